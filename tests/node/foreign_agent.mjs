// A foreign A2A 1.0 agent on the A2A JS SDK (@a2a-js/sdk 1.3, Express): FX quotes.
//
//   node foreign_agent.mjs PORT
//
// JSON-RPC at /, HTTP+JSON at /rest, card at /.well-known/agent-card.json; streaming. It also
// serves A2A 0.3 clients (legacyCompat), as a 1.x JS deployment migrating from 0.3 would.
// Knows nothing of agent-mesh: it reads an amount and two currencies from the message's text
// ("Quote 120 USD in EUR") and/or a data part ({"amount", "from", "to"}), and answers with a Task
// whose artifact "quote" holds a data part (the quote) and a text part. A missing amount or
// currency makes the task input-required with a question; the answer (on the same task) is read
// together with everything said before. An unknown currency in the data part fails the task.
// Prints nothing but errors.

import express from 'express';
import { Role, TaskState } from '@a2a-js/sdk';
import { DefaultRequestHandler, InMemoryTaskStore } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, restHandler, UserBuilder } from '@a2a-js/sdk/server/express';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node foreign_agent.mjs PORT');
  process.exit(2);
}
const base = `http://127.0.0.1:${port}`;

// Units of each currency per euro: fixed, so every quote is reproducible.
const PER_EUR = { EUR: 1, USD: 1.08, GBP: 0.85, CHF: 0.95, JPY: 162 };

const card = {
  name: 'fx-quotes',
  description: 'Foreign-exchange quotes: converts an amount between EUR, USD, GBP, CHF and JPY at the desk rate',
  version: '2.1.0',
  provider: { organization: 'Example FX Desk', url: 'https://fx.example.com' },
  supportedInterfaces: [
    { url: `${base}/`, protocolBinding: 'JSONRPC', protocolVersion: '1.0', tenant: '' },
    { url: `${base}/rest`, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0', tenant: '' },
    { url: `${base}/`, protocolBinding: 'JSONRPC', protocolVersion: '0.3', tenant: '' },
  ],
  capabilities: { streaming: true, pushNotifications: false, extensions: [] },
  securitySchemes: {},
  securityRequirements: [],
  defaultInputModes: ['text/plain', 'application/json'],
  defaultOutputModes: ['application/json', 'text/plain'],
  skills: [
    {
      id: 'quote',
      name: 'FX quote',
      description: 'Quote an amount in another currency, e.g. "Quote 120 USD in EUR"',
      tags: ['fx', 'currency', 'exchange', 'quote'],
      examples: ['Quote 120 USD in EUR', 'How much is 50 GBP in JPY?'],
      inputModes: [],
      outputModes: [],
      securityRequirements: [],
    },
  ],
  signatures: [],
};

const textPart = (value) => ({ content: { $case: 'text', value }, metadata: undefined, filename: '', mediaType: 'text/plain' });
const dataPart = (value) => ({ content: { $case: 'data', value }, metadata: undefined, filename: '', mediaType: 'application/json' });
const agentMessage = (text, taskId, contextId) => ({
  messageId: crypto.randomUUID(), contextId, taskId, role: Role.ROLE_AGENT, parts: [textPart(text)],
  metadata: undefined, extensions: [], referenceTaskIds: [],
});
const status = (state, text, taskId, contextId) => ({
  state, message: text ? agentMessage(text, taskId, contextId) : undefined, timestamp: new Date().toISOString(),
});

/** What the customer asked for so far: later messages fill in (or correct) earlier ones. */
function readRequest(messages) {
  const wanted = { amount: undefined, from: undefined, to: undefined, unknown: [] };
  for (const message of messages) {
    for (const part of message.parts ?? []) {
      const content = part.content;
      if (content?.$case === 'text') {
        const amount = content.value.match(/(\d+(?:\.\d+)?)/);
        if (amount) wanted.amount = Number(amount[1]);
        const codes = (content.value.toUpperCase().match(/\b[A-Z]{3}\b/g) ?? []).filter((c) => c in PER_EUR);
        for (const code of codes) {
          if (wanted.from === undefined) wanted.from = code;
          else if (wanted.to === undefined) wanted.to = code;
        }
      } else if (content?.$case === 'data' && content.value && typeof content.value === 'object') {
        const { amount, from, to } = content.value;
        if (typeof amount === 'number' || (typeof amount === 'string' && amount.trim() !== '')) wanted.amount = Number(amount);
        for (const [key, code] of [['from', from], ['to', to]]) {
          if (typeof code !== 'string') continue;
          if (code.toUpperCase() in PER_EUR) wanted[key] = code.toUpperCase();
          else wanted.unknown.push(code);
        }
      }
    }
  }
  return wanted;
}

class FxExecutor {
  async execute(context, bus) {
    const { taskId, contextId } = context;
    const previous = (context.task?.history ?? []).filter((m) => m.role === Role.ROLE_USER);
    const messages = previous.some((m) => m.messageId === context.userMessage.messageId)
      ? previous : [...previous, context.userMessage];
    if (!context.task) {
      bus.publish({ kind: 'task', data: {
        id: taskId, contextId, status: status(TaskState.TASK_STATE_SUBMITTED, null, taskId, contextId),
        artifacts: [], history: [context.userMessage], metadata: undefined,
      } });
    }
    const update = (state, text) => bus.publish({ kind: 'statusUpdate', data: {
      taskId, contextId, status: status(state, text, taskId, contextId), metadata: undefined,
    } });
    update(TaskState.TASK_STATE_WORKING, null);

    const wanted = readRequest(messages);
    if (wanted.unknown.length) {
      update(TaskState.TASK_STATE_FAILED, `no rate for ${wanted.unknown.join(', ')}: this desk quotes ${Object.keys(PER_EUR).join(', ')}`);
      return bus.finished();
    }
    const question = wanted.amount === undefined || Number.isNaN(wanted.amount) ? 'How much should I quote?'
      : wanted.from === undefined ? `In which currency is the amount of ${wanted.amount}?`
      : wanted.to === undefined ? `Which currency should I quote ${wanted.amount} ${wanted.from} in?`
      : null;
    if (question) {
      update(TaskState.TASK_STATE_INPUT_REQUIRED, question);
      return bus.finished();
    }
    const rate = PER_EUR[wanted.to] / PER_EUR[wanted.from];
    const converted = Math.round(wanted.amount * rate * 100) / 100;
    const quote = {
      quote_id: `FX-${wanted.from}${wanted.to}-${Math.round(wanted.amount * 100)}`,
      amount: wanted.amount, from: wanted.from, to: wanted.to,
      rate: Math.round(rate * 1e6) / 1e6, converted_amount: converted,
    };
    bus.publish({ kind: 'artifactUpdate', data: {
      taskId, contextId, append: false, lastChunk: true, metadata: undefined,
      artifact: {
        artifactId: crypto.randomUUID(), name: 'quote', description: 'FX quote', extensions: [], metadata: undefined,
        parts: [dataPart(quote), textPart(`${wanted.amount} ${wanted.from} = ${converted} ${wanted.to}`)],
      },
    } });
    update(TaskState.TASK_STATE_COMPLETED, null);
    bus.finished();
  }

  async cancelTask(taskId, bus) {
    bus.publish({ kind: 'statusUpdate', data: {
      taskId, contextId: '', status: status(TaskState.TASK_STATE_CANCELED, 'canceled', taskId, ''), metadata: undefined,
    } });
    bus.finished();
  }
}

const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), new FxExecutor());
const legacyCompat = { enabled: true };
const app = express();
app.use('/.well-known/agent-card.json', agentCardHandler({ agentCardProvider: handler, legacyCompat }));
app.use('/rest', restHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
app.use('/', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication, legacyCompat }));
const server = app.listen(port, '127.0.0.1');
server.on('error', (error) => {
  console.error(`fx-quotes cannot listen on ${port}: ${error.message}`);
  process.exit(1);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
