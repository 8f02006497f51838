// Embeddings through the official `ollama` and `openai` npm clients, unchanged: a random BERT
// encoder (tools/embed/mkbert.py, WordPiece vocabulary, mean pooling) created on a real
// `hearth serve`. A batch of 64 inputs equals one request per input; `dimensions` and
// `truncate` behave as Ollama's; the OpenAI client (which asks for base64 by default and decodes
// it) gets the same vectors; errors arrive as the clients' error types.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { startServer } from './harness.mjs';

let srv, ollama, openai;

const norm = (v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
const maxDiff = (a, b) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-e2e-embed-'));
  const gguf = join(dir, 'bert.gguf');
  execFileSync('/usr/bin/python3', ['tools/embed/mkbert.py', gguf, '--pooling', 'mean',
                                    '--dtype', 'F16', '--n-ctx', '128']);
  srv = await startServer();
  ollama = new Ollama({ host: srv.host });
  openai = new OpenAI({ baseURL: `${srv.host}/v1`, apiKey: 'hearth' });
  await srv.create('minilm', gguf);
});

after(() => srv?.stop());

const INPUTS = Array.from({ length: 64 }, (_, i) =>
  `passage ${i}: ` + 'the river runs past the old stone mill '.repeat(1 + (i % 4)));

test('ollama: one string, 64 strings batched = one at a time', async () => {
  const one = await ollama.embed({ model: 'minilm', input: 'hello world' });
  assert.equal(one.embeddings.length, 1);
  assert.ok(Math.abs(norm(one.embeddings[0]) - 1) < 1e-5);
  assert.ok(one.prompt_eval_count > 0);

  const batch = await ollama.embed({ model: 'minilm', input: INPUTS });
  assert.equal(batch.embeddings.length, 64);
  for (const i of [0, 1, 2, 3, 17, 42, 63]) {
    const single = await ollama.embed({ model: 'minilm', input: INPUTS[i] });
    assert.ok(maxDiff(batch.embeddings[i], single.embeddings[0]) < 1e-5, `input ${i}`);
  }
});

test('ollama: dimensions, truncate, legacy embeddings, errors', async () => {
  const full = (await ollama.embed({ model: 'minilm', input: 'hello world' })).embeddings[0];
  const cut = (await ollama.embed({ model: 'minilm', input: 'hello world', dimensions: 8 }))
    .embeddings[0];
  assert.equal(cut.length, 8);
  assert.ok(Math.abs(norm(cut) - 1) < 1e-5);
  const head = full.slice(0, 8);
  const n = norm(head);
  assert.ok(maxDiff(cut, head.map((x) => x / n)) < 1e-5);

  const long = 'word '.repeat(400);  // past the model's 128 positions
  await assert.rejects(ollama.embed({ model: 'minilm', input: long, truncate: false }),
                       (e) => e.status_code === 400 && /exceeds the context length/.test(e.error));
  const t = await ollama.embed({ model: 'minilm', input: long });
  assert.equal(t.prompt_eval_count, 128);

  const legacy = await ollama.embeddings({ model: 'minilm', prompt: 'hello world' });
  const ln = norm(legacy.embedding);
  assert.ok(maxDiff(legacy.embedding.map((x) => x / ln), full) < 1e-5);

  await assert.rejects(ollama.embed({ model: 'nope', input: 'x' }),
                       (e) => e.status_code === 404);
  await assert.rejects(ollama.generate({ model: 'minilm', prompt: 'hi' }),
                       (e) => e.status_code === 400 && /does not support generate/.test(e.error));
});

test('openai: the same vectors (base64 by default, and float), dimensions, usage', async () => {
  const native = (await ollama.embed({ model: 'minilm', input: INPUTS.slice(0, 4) })).embeddings;
  const r = await openai.embeddings.create({ model: 'minilm', input: INPUTS.slice(0, 4) });
  assert.equal(r.data.length, 4);
  r.data.forEach((d, i) => {
    assert.equal(d.index, i);
    assert.ok(maxDiff(d.embedding, native[i]) < 1e-6);
  });
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens);
  const f = await openai.embeddings.create({ model: 'minilm', input: INPUTS[0],
                                            encoding_format: 'float', dimensions: 16 });
  assert.equal(f.data[0].embedding.length, 16);
  await assert.rejects(openai.embeddings.create({ model: 'nope', input: 'x' }),
                       (e) => e.status === 404);
});
