// End-to-end: a real `hearth serve` on loopback driven by the official `ollama` and `openai`
// npm packages, unchanged. Outputs are checked, not just status codes: greedy text through the
// API equals `hearth greedy` on the same tokens, streaming equals non-streaming, and the OpenAI
// endpoints give the same text as the native ones.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';

const HEARTH = resolve(process.env.HEARTH_BIN ?? 'build/hearth');
const SHARED = resolve(process.env.HEARTH_SHARED ?? '../shared');
const GGUF = join(SHARED, 'fixtures', 'llama-Q8_0.gguf');
const GREEDY = { temperature: 0, top_k: 1 };

let server, host, ollama, openai, models;

function freePort() {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function waitUp(url) {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('hearth serve did not start');
}

before(async () => {
  models = mkdtempSync(join(tmpdir(), 'hearth-e2e-'));
  const port = await freePort();
  host = `http://127.0.0.1:${port}`;
  server = spawn(HEARTH, ['serve'], {
    env: { ...process.env, HEARTH_MODELS: models, HEARTH_HOST: `127.0.0.1:${port}`,
           HEARTH_NUM_PARALLEL: '4' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitUp(host);
  ollama = new Ollama({ host });
  openai = new OpenAI({ baseURL: `${host}/v1`, apiKey: 'hearth' });
  // Upload the GGUF as a blob (what `ollama create` and Open WebUI do), then create from it.
  const bytes = readFileSync(GGUF);
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  const up = await fetch(`${host}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  assert.equal(up.status, 201);
  const r = await ollama.create({ model: 'tiny', files: { 'tiny.gguf': digest }, stream: false });
  assert.equal(r.status, 'success');
});

after(() => {
  server?.kill('SIGTERM');
  rmSync(models, { recursive: true, force: true });
});

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
