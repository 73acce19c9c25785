// Drive one of our agents with the A2A JS SDK (@a2a-js/sdk), as a foreign client would.
//
//   node a2a_client.mjs BASE_URL [JSONRPC|HTTP+JSON]
//
// Fetches the card, sends a skill call (data part) and a plain-text message, streams a message,
// gets a task, answers an input-required task over two turns and provokes "task not found".
// Prints ONE JSON object with everything observed; tests/test_js_client.py makes the assertions.
// Any unexpected exception crashes the script (non-zero exit, stack on stderr).

import { Role, taskStateToJSON } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions } from '@a2a-js/sdk/client';
import { TaskNotFoundError } from '@a2a-js/sdk/errors';

const [base, binding = 'JSONRPC'] = process.argv.slice(2);
if (!base) throw new Error('usage: node a2a_client.mjs BASE_URL [JSONRPC|HTTP+JSON]');

const factory = new ClientFactory(
  ClientFactoryOptions.createFrom(ClientFactoryOptions.default, { preferredTransports: [binding] }),
);
const client = await factory.createFromUrl(base);
const card = await client.getAgentCard();

const part = (content) => ({ content, metadata: undefined, filename: '', mediaType: '' });
const message = (parts, ids = {}) => ({
  message: {
    messageId: crypto.randomUUID(),
    role: Role.ROLE_USER,
    parts,
    contextId: ids.contextId ?? '',
    taskId: ids.taskId ?? '',
  },
});
const text = (value, ids) => message([part({ $case: 'text', value })], ids);
const call = (skill, args, ids) => message([part({ $case: 'data', value: { skill, arguments: args } })], ids);

const state = (status) => (status ? taskStateToJSON(status.state) : null);
const partValue = (p) => ({ kind: p.content?.$case ?? null, value: p.content?.value ?? null });
const statusText = (status) =>
  (status?.message?.parts ?? []).filter((p) => p.content?.$case === 'text').map((p) => p.content.value).join(' ');

/** A Task or a Message (the SDK returns either from sendMessage) as plain JSON. */
function describe(result) {
  if (result.status !== undefined && result.id) {
    return {
      kind: 'task',
      id: result.id,
      contextId: result.contextId,
      state: state(result.status),
      statusText: statusText(result.status),
      artifacts: result.artifacts.map((a) => ({ name: a.name, parts: a.parts.map(partValue) })),
      historyLength: result.history.length,
    };
  }
  return { kind: 'message', role: result.role, parts: result.parts.map(partValue) };
}

async function stream(request) {
  const events = [];
  let finalState = null;
  for await (const ev of client.sendMessageStream(request)) {
    const kind = ev.payload?.$case ?? null;
    const value = ev.payload?.value;
    const entry = { kind };
    if (kind === 'task' || kind === 'statusUpdate') {
      entry.state = state(value.status);
      entry.statusText = statusText(value.status);
      entry.taskId = kind === 'task' ? value.id : value.taskId;
      finalState = entry.state;
    } else if (kind === 'artifactUpdate') {
      entry.taskId = value.taskId;
      entry.parts = value.artifact.parts.map(partValue);
    }
    events.push(entry);
  }
  return { kinds: events.map((e) => e.kind), events, finalState };
}

const out = {
  binding,
  transport: client.transport.protocolName,
  card: {
    name: card.name,
    version: card.version,
    interfaces: card.supportedInterfaces.map((i) => ({
      binding: i.protocolBinding,
      url: i.url,
      version: i.protocolVersion,
    })),
    skills: card.skills.map((s) => s.id),
    streaming: card.capabilities?.streaming ?? null,
  },
};

// A skill call through a data part, and a plain-text message routed by the agent.
const skillTask = await client.sendMessage(call('opening_hours', { department: 'billing' }));
out.skillCall = describe(skillTask);
out.plainText = describe(await client.sendMessage(text('When is support open?')));

// GetTask on the skill call's task.
out.getTask = describe(await client.getTask({ id: skillTask.id }));

// Streaming: a completing call, and one that stops at a question.
out.stream = await stream(call('opening_hours', { department: 'shop' }));
out.streamInterrupted = await stream(call('book_callback', { customer: 'Ada' }));

// Multi-turn: a skill that asks two questions, answered with the same taskId/contextId.
const first = describe(await client.sendMessage(call('book_callback', { customer: 'Ada' })));
const ids = { taskId: first.id, contextId: first.contextId };
const second = describe(await client.sendMessage(text('+44 20 7946 0000', ids)));
const third = describe(await client.sendMessage(text('morning', ids)));
out.multiTurn = { turns: [first, second, third], final: describe(await client.getTask({ id: first.id })) };

// A missing task: the SDK's typed error for this binding.
try {
  await client.getTask({ id: `missing-${crypto.randomUUID()}` });
  out.missingTask = { error: null };
} catch (error) {
  if (!(error instanceof Error) || error.constructor === Error || error.constructor === TypeError) throw error;
  out.missingTask = {
    error: error.constructor.name,
    name: error.name,
    isTaskNotFound: error instanceof TaskNotFoundError,
    transport: error.transport ?? null,
    message: error.message,
  };
}

process.stdout.write(JSON.stringify(out) + '\n');
