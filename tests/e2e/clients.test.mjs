// End-to-end: a real `hearth serve` on loopback driven by the official `ollama` and `openai`
// npm packages, unchanged. Outputs are checked, not just status codes: greedy text through the
// API equals `hearth greedy` on the same tokens, streaming equals non-streaming, and the OpenAI
// endpoints give the same text as the native ones.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { HEARTH, SHARED, startServer } from './harness.mjs';

const GGUF = join(SHARED, 'fixtures', 'llama-Q8_0.gguf');
const GREEDY = { temperature: 0, top_k: 1 };

let srv, host, ollama, openai;

before(async () => {
  srv = await startServer();
  host = srv.host;
  ollama = new Ollama({ host });
  openai = new OpenAI({ baseURL: `${host}/v1`, apiKey: 'hearth' });
  await srv.create('tiny', GGUF);
});

after(() => srv?.stop());

test('version, list, show', async () => {
  const v = await ollama.version();
  assert.match(v.version, /^\d+\.\d+\.\d+$/);
  const list = await ollama.list();
  assert.deepEqual(list.models.map((m) => m.name), ['tiny:latest']);
  assert.equal(list.models[0].details.family, 'llama');
  const show = await ollama.show({ model: 'tiny' });
  assert.equal(show.model_info['general.architecture'], 'llama');
  assert.match(show.parameters ?? '', /num_ctx/);
  assert.ok(show.capabilities.includes('completion'));
});

test('generate: greedy equals `hearth greedy`, streaming equals non-streaming', async () => {
  const r = await ollama.generate({ model: 'tiny', prompt: 'Why is the sky blue?',
                                    options: { ...GREEDY, num_predict: 16 } });
  assert.equal(r.done, true);
  assert.equal(r.eval_count, 16);
  const n = r.prompt_eval_count;
  const prompt = r.context.slice(0, n);
  const ref = JSON.parse(execFileSync(HEARTH, ['greedy', '-m', GGUF, '--tokens', prompt.join(','),
                                               '--n', '16']).toString().trim().split('\n').pop());
  assert.deepEqual(r.context.slice(n), ref.tokens);
  assert.equal(r.response, ref.text);

  let text = '';
  let last;
  for await (const part of await ollama.generate({ model: 'tiny', prompt: 'Why is the sky blue?',
                                                   stream: true,
                                                   options: { ...GREEDY, num_predict: 16 } })) {
    text += part.response;
    last = part;
  }
  assert.equal(last.done, true);
  assert.equal(last.done_reason, 'length');
  assert.equal(text, r.response);
});

test('chat: streaming equals non-streaming, follow-up turn', async () => {
  const messages = [{ role: 'user', content: 'Tell me a story.' }];
  const r = await ollama.chat({ model: 'tiny', messages, options: { ...GREEDY, num_predict: 12 } });
  assert.equal(r.message.role, 'assistant');
  assert.ok(r.message.content.length > 0);
  let text = '';
  for await (const part of await ollama.chat({ model: 'tiny', messages, stream: true,
                                               options: { ...GREEDY, num_predict: 12 } }))
    text += part.message.content;
  assert.equal(text, r.message.content);
  const r2 = await ollama.chat({ model: 'tiny', options: { ...GREEDY, num_predict: 4 },
                                 messages: [...messages, r.message,
                                            { role: 'user', content: 'Go on.' }] });
  assert.equal(r2.done, true);
  assert.ok(r2.prompt_eval_count > r.prompt_eval_count);
});

test('copy, ps, delete', async () => {
  await ollama.copy({ source: 'tiny', destination: 'tiny-copy' });
  const names = (await ollama.list()).models.map((m) => m.name).sort();
  assert.deepEqual(names, ['tiny-copy:latest', 'tiny:latest']);
  const ps = await ollama.ps();
  assert.ok(ps.models.some((m) => m.name === 'tiny:latest'));
  assert.ok(!Number.isNaN(Date.parse(ps.models[0].expires_at)));
  await ollama.delete({ model: 'tiny-copy' });
  assert.deepEqual((await ollama.list()).models.map((m) => m.name), ['tiny:latest']);
});

test('errors reach the client as ResponseError with the server message', async () => {
  await assert.rejects(ollama.generate({ model: 'missing', prompt: 'x' }),
                       (e) => e.status_code === 404 && /not found/.test(e.error));
  await assert.rejects(ollama.chat({ model: 'tiny', messages: [], format: 7 }),
                       (e) => e.status_code === 400);
});

test('abort stops a stream and the server keeps serving', async () => {
  const stream = await ollama.generate({ model: 'tiny', prompt: 'Count forever', stream: true,
                                         options: { num_predict: 100000 } });
  let n = 0;
  try {
    for await (const _ of stream) {
      if (++n === 3) stream.abort();
    }
  } catch (e) {
    assert.equal(e.name, 'AbortError');
  }
  const r = await ollama.generate({ model: 'tiny', prompt: 'hi', options: { num_predict: 2 } });
  assert.equal(r.done, true);
});

test('openai: chat completions (plain and streamed), completions, models', async () => {
  const messages = [{ role: 'user', content: 'Tell me a story.' }];
  const native = await ollama.chat({ model: 'tiny', messages,
                                     options: { ...GREEDY, num_predict: 12 } });
  const c = await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 12,
                                                   temperature: 0 });
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.choices[0].message.content, native.message.content);
  assert.equal(c.choices[0].finish_reason, 'length');
  assert.equal(c.usage.completion_tokens, 12);
  let text = '';
  let usage;
  const s = await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 12,
                                                   temperature: 0, stream: true,
                                                   stream_options: { include_usage: true } });
  for await (const chunk of s) {
    if (chunk.choices.length) text += chunk.choices[0].delta.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, native.message.content);
  assert.equal(usage.completion_tokens, 12);

  const g = await ollama.generate({ model: 'tiny', prompt: 'Once upon', raw: true,
                                    options: { ...GREEDY, num_predict: 8 } });
  const comp = await openai.completions.create({ model: 'tiny', prompt: 'Once upon',
                                                 max_tokens: 8, temperature: 0 });
  assert.equal(comp.choices[0].text, g.response);

  const list = await openai.models.list();
  assert.ok(list.data.some((m) => m.id === 'tiny:latest'));
  const m = await openai.models.retrieve('tiny:latest');
  assert.equal(m.id, 'tiny:latest');
  await assert.rejects(openai.chat.completions.create({ model: 'missing', messages }),
                       (e) => e.status === 404);
});

test('logprobs: the chosen token and the top alternatives, on both APIs', async () => {
  const r = await openai.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 6, temperature: 0,
    logprobs: true, top_logprobs: 3,
  });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, r.usage.completion_tokens);
  for (const e of lp) {
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 3);
    // Greedy: the chosen token is the likeliest one.
    assert.equal(e.top_logprobs[0].token, e.token);
    assert.ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-6);
    assert.ok(e.top_logprobs[1].logprob <= e.top_logprobs[0].logprob);
    // bytes are exact; the token text shows a character split across tokens as U+FFFD.
    if (!e.token.includes('\ufffd')) assert.deepEqual(e.bytes, [...Buffer.from(e.token)]);
  }
  const g = await ollama.generate({ model: 'tiny', prompt: 'hi', stream: false, logprobs: true,
                                    options: { ...GREEDY, num_predict: 4 } });
  assert.equal(g.logprobs.length, g.eval_count);
  const chunks = [];
  for await (const c of await ollama.generate({ model: 'tiny', prompt: 'hi', stream: true,
                                                logprobs: true, top_logprobs: 2,
                                                options: { ...GREEDY, num_predict: 4 } }))
    chunks.push(...(c.logprobs ?? []));
  assert.equal(chunks.length, 4);
  assert.equal(chunks[0].top_logprobs.length, 2);
  await assert.rejects(ollama.generate({ model: 'tiny', prompt: 'x', top_logprobs: 50, stream: false }),
                       (e) => e.status_code === 400);
});

test('openai: n > 1 choices, plain and streamed', async () => {
  const r = await openai.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'hi' }], n: 3, max_tokens: 5, seed: 1,
    temperature: 1,
  });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  for (const c of r.choices) assert.ok(['stop', 'length'].includes(c.finish_reason));
  assert.ok(r.usage.completion_tokens >= 3);  // summed over the choices
  // Streamed: each choice's text and finish arrive under its own index; [DONE] once at the end.
  const stream = await openai.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'hi' }], n: 2, max_tokens: 5, seed: 1,
    temperature: 1, stream: true,
  });
  const text = ['', ''], finish = [null, null];
  for await (const chunk of stream)
    for (const c of chunk.choices) {
      text[c.index] += c.delta?.content ?? '';
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  assert.ok(finish.every((f) => f === 'stop' || f === 'length'), JSON.stringify(finish));
  assert.ok(text[0].length > 0 || finish[0] === 'stop');
  await assert.rejects(openai.chat.completions.create({ model: 'tiny', n: 9,
                                                       messages: [{ role: 'user', content: 'x' }] }),
                       (e) => e.status === 400);
});
