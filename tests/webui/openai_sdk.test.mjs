// `smolvlm serve` as the official OpenAI Node SDK (npm `openai`) speaks to it: the calls an
// application makes, on the tiny model, against a server the test starts itself.
//   node --test tests/webui/openai_sdk.test.mjs   (SMOLVLM_BIN: the CLI, default build-release/smolvlm)
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { model, serve, stopServer } from './serve.mjs';

const picture = `data:image/png;base64,${fs
  .readFileSync(path.join(model, 'images/img_a.png'))
  .toString('base64')}`;
const KEY = 'sdk-test-key';

let server;
let client;

before(async () => {
  server = await serve(['--api-key', KEY, '--parallel', '2']);
  client = new OpenAI({ apiKey: KEY, baseURL: `${server.url}/v1`, maxRetries: 0 });
});

after(async () => {
  await stopServer(server);
});

const question = (text, withPicture = true) => [
  {
    role: 'user',
    content: [
      ...(withPicture ? [{ type: 'image_url', image_url: { url: picture } }] : []),
      { type: 'text', text },
    ],
  },
];

test('models: list and retrieve', async () => {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  assert.deepEqual(ids, ['tiny-smolvlm2']);
  const one = await client.models.retrieve('tiny-smolvlm2');
  assert.equal(one.id, 'tiny-smolvlm2');
  await assert.rejects(client.models.retrieve('no-such-model'), (e) => e.status === 404);
});

test('a whole answer: text, usage, finish reason, request id', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'tiny-smolvlm2', messages: question('What is in this picture?'), max_tokens: 12 })
    .withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.ok(data.choices[0].message.content.length > 0);
  assert.ok(['stop', 'length'].includes(data.choices[0].finish_reason));
  assert.ok(data.usage.prompt_tokens > 0);
  assert.ok(data.usage.completion_tokens > 0 && data.usage.completion_tokens <= 12);
  assert.equal(response.headers.get('x-request-id'), data.id);
});

test('a stream: chunks add up to the whole answer, usage at the end when asked', async () => {
  const messages = question('Describe the picture.');
  const whole = await client.chat.completions.create({
    model: 'tiny-smolvlm2', messages, max_tokens: 16, temperature: 0,
  });
  const stream = await client.chat.completions.create({
    model: 'tiny-smolvlm2', messages, max_tokens: 16, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) text += c.delta?.content ?? '';
  }
  assert.ok(chunks > 2, `${chunks} chunks`);
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
});

test('seeds: the same seed repeats an answer; without one, sampling differs', async () => {
  const ask = (seed) =>
    client.chat.completions.create({
      model: 'tiny-smolvlm2', messages: question('Tell me a story.', false), max_tokens: 24,
      temperature: 1, ...(seed === undefined ? {} : { seed }),
    });
  const a = await ask(7);
  const b = await ask(7);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  const seen = new Set();
  for (let i = 0; i < 4; i++) seen.add((await ask()).choices[0].message.content);
  assert.ok(seen.size > 1, 'four seedless answers were all the same');
});

test('text is text: an <image> typed in a text part is words, not a marker', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny-smolvlm2', max_tokens: 4,
    messages: question('What does the HTML <image> tag do?', false),
  });
  assert.ok(r.choices[0].message.content.length > 0);
});

test('structured output: response_format json_schema gives JSON of that schema', async () => {
  const schema = {
    type: 'object',
    properties: { open: { type: 'boolean' } },
    required: ['open'],
    additionalProperties: false,
  };
  const r = await client.chat.completions.create({
    model: 'tiny-smolvlm2', messages: question('Is the door open?'), max_tokens: 32,
    response_format: { type: 'json_schema', json_schema: { name: 'door', schema, strict: true } },
  });
  const answer = JSON.parse(r.choices[0].message.content);
  assert.deepEqual(Object.keys(answer), ['open']);
  assert.equal(typeof answer.open, 'boolean');
});

test('errors the SDK types: wrong key 401, unsupported parameter 400', async () => {
  const wrong = new OpenAI({ apiKey: 'wrong', baseURL: `${server.url}/v1`, maxRetries: 0 });
  await assert.rejects(
    wrong.chat.completions.create({ model: 'tiny-smolvlm2', messages: question('Hi', false) }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401,
  );
  await assert.rejects(
    client.chat.completions.create({
      model: 'tiny-smolvlm2', messages: question('Hi', false),
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
    }),
    (e) => e instanceof OpenAI.BadRequestError && /tools/.test(e.message),
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny-smolvlm2', messages: question('Hi', false), n: 2 }),
    (e) => e.status === 400,
  );
});

test('a prompt longer than the context: 400 context_length_exceeded', async () => {
  const long = 'word '.repeat(20000);
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny-smolvlm2', messages: question(long, false) }),
    (e) => e.status === 400 && e.code === 'context_length_exceeded',
  );
});
