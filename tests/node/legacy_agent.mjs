// A foreign A2A 0.3 agent on the A2A JS SDK 0.3 (a2a-js-sdk-v03 = @a2a-js/sdk@0.3.14, Express):
// parcel shipping rates.
//
//   node legacy_agent.mjs PORT [--name NAME] [--die-on-request]
//
// A 0.3 card (top-level url, protocolVersion 0.3.0, preferredTransport JSONRPC, additionalInterfaces),
// JSON-RPC 0.3 (message/send, message/stream, tasks/get) at /, HTTP+JSON 0.3 at /rest/v1/…
// It reads a weight and a destination country from the text ("Rate a 2.5 kg parcel to FR")
// and/or a data part ({"weight_kg", "destination"}) and answers with a Task whose artifact
// "rate" holds a data part and a text part; a missing weight or destination makes the task
// input-required with a question. An unknown destination rejects the task. With
// --die-on-request the process exits on the first message (an agent that dies mid-call).
// Prints nothing but errors.

import express from 'express';
import { DefaultRequestHandler, InMemoryTaskStore } from 'a2a-js-sdk-v03/server';
import { agentCardHandler, jsonRpcHandler, restHandler, UserBuilder } from 'a2a-js-sdk-v03/server/express';

const args = process.argv.slice(2);
const port = Number(args[0]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node legacy_agent.mjs PORT [--name NAME] [--die-on-request]');
  process.exit(2);
}
const option = (flag) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
const name = option('--name') ?? 'shipping-rates';
const dieOnRequest = args.includes('--die-on-request');
const base = `http://127.0.0.1:${port}`;

// Euro price of a parcel per destination: a base fee plus a price per kilogram.
const ZONES = { DE: [4.9, 1.1], FR: [5.5, 1.3], NL: [5.5, 1.3], GB: [7.9, 1.8], US: [14, 3.2], JP: [16, 3.5] };

const card = {
  name,
  description: 'Parcel shipping rates: prices a parcel by weight to DE, FR, NL, GB, US or JP',
  protocolVersion: '0.3.0',
  version: '0.9.4',
  url: `${base}/`,
  preferredTransport: 'JSONRPC',
  additionalInterfaces: [
    { url: `${base}/`, transport: 'JSONRPC' },
    { url: `${base}/rest`, transport: 'HTTP+JSON' },
  ],
  provider: { organization: 'Example Parcels', url: 'https://parcels.example.com' },
  capabilities: { streaming: true, pushNotifications: false, stateTransitionHistory: false },
  defaultInputModes: ['text/plain', 'application/json'],
  defaultOutputModes: ['application/json', 'text/plain'],
  skills: [
    {
      id: 'rate',
      name: 'Shipping rate',
      description: 'Price a parcel by weight and destination, e.g. "Rate a 2.5 kg parcel to FR"',
      tags: ['shipping', 'parcel', 'rate', 'delivery'],
      examples: ['Rate a 2.5 kg parcel to FR'],
    },
  ],
};

const agentMessage = (text, taskId, contextId) => ({
  kind: 'message', messageId: crypto.randomUUID(), role: 'agent', parts: [{ kind: 'text', text }], taskId, contextId,
});

/** What the sender asked for so far: later messages fill in (or correct) earlier ones. */
function readRequest(messages) {
  const wanted = { weight: undefined, destination: undefined, unknown: undefined };
  for (const message of messages) {
    for (const part of message.parts ?? []) {
      if (part.kind === 'text') {
        const weight = part.text.match(/(\d+(?:\.\d+)?)\s*kg/i) ?? part.text.match(/^\s*(\d+(?:\.\d+)?)\s*$/);
        if (weight) wanted.weight = Number(weight[1]);
        const code = (part.text.match(/\b[A-Z]{2}\b/g) ?? []).find((c) => c in ZONES);
        if (code) wanted.destination = code;
      } else if (part.kind === 'data' && part.data && typeof part.data === 'object') {
        const { weight_kg: weight, destination } = part.data;
        if (weight !== undefined && weight !== null && `${weight}`.trim() !== '') wanted.weight = Number(weight);
        if (typeof destination === 'string') {
          if (destination.toUpperCase() in ZONES) wanted.destination = destination.toUpperCase();
          else wanted.unknown = destination;
        }
      }
    }
  }
  return wanted;
}

class ShippingExecutor {
  async execute(context, bus) {
    if (dieOnRequest) process.exit(3);
    const { taskId, contextId, userMessage } = context;
    const previous = (context.task?.history ?? []).filter((m) => m.role === 'user');
    const messages = previous.some((m) => m.messageId === userMessage.messageId) ? previous : [...previous, userMessage];
    if (!context.task) {
      bus.publish({
        kind: 'task', id: taskId, contextId, history: [userMessage],
        status: { state: 'submitted', timestamp: new Date().toISOString() },
      });
    }
    const update = (state, text, final) => bus.publish({
      kind: 'status-update', taskId, contextId, final,
      status: { state, message: text ? agentMessage(text, taskId, contextId) : undefined, timestamp: new Date().toISOString() },
    });
    update('working', null, false);

    const wanted = readRequest(messages);
    if (wanted.unknown !== undefined) {
      update('rejected', `we do not ship to ${wanted.unknown}; destinations: ${Object.keys(ZONES).join(', ')}`, true);
      return bus.finished();
    }
    const question = wanted.weight === undefined || Number.isNaN(wanted.weight) ? 'How heavy is the parcel, in kg?'
      : wanted.destination === undefined ? `Where should the ${wanted.weight} kg parcel go (country code)?`
      : null;
    if (question) {
      update('input-required', question, true);
      return bus.finished();
    }
    const [fee, perKg] = ZONES[wanted.destination];
    const price = Math.round((fee + perKg * wanted.weight) * 100) / 100;
    const rate = {
      carrier: 'Example Parcels', destination: wanted.destination, weight_kg: wanted.weight,
      shipping_price: price, shipping_currency: 'EUR', service: wanted.weight > 20 ? 'freight' : 'parcel',
    };
    bus.publish({
      kind: 'artifact-update', taskId, contextId, append: false, lastChunk: true,
      artifact: {
        artifactId: crypto.randomUUID(), name: 'rate',
        parts: [{ kind: 'data', data: rate }, { kind: 'text', text: `${wanted.weight} kg to ${wanted.destination}: ${price} EUR` }],
      },
    });
    update('completed', null, true);
    bus.finished();
  }

  async cancelTask(taskId, bus) {
    bus.publish({ kind: 'status-update', taskId, contextId: '', final: true, status: { state: 'canceled' } });
    bus.finished();
  }
}

const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), new ShippingExecutor());
const app = express();
app.use('/.well-known/agent-card.json', agentCardHandler({ agentCardProvider: handler }));
app.use('/rest', restHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
app.use('/', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
const server = app.listen(port, '127.0.0.1');
server.on('error', (error) => {
  console.error(`${name} cannot listen on ${port}: ${error.message}`);
  process.exit(1);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
