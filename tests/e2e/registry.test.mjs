// Getting models with the official `ollama` client: one `hearth serve` pulls from another, which
// answers the registry API for its own store (issue #16). The client's pull progress (streamed and
// not) is what Open WebUI and the official CLIs draw their bars from.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import { SHARED, startServer } from './harness.mjs';

let a, b, fromB;

before(async () => {
  a = await startServer();
  b = await startServer();
  await a.create('shared', join(SHARED, 'fixtures', 'llama-Q4_K_M.gguf'));
  await new Ollama({ host: a.host }).copy({ source: 'shared', destination: 'shared:v2' });
  fromB = new Ollama({ host: b.host });
});

after(() => {
  a?.stop();
  b?.stop();
});

const nameOnA = (tag) => `${a.host.replace('http://', '')}/library/shared:${tag}`;

test('streamed pull: Ollama progress objects, then the model answers as on the source', async () => {
  const seen = [];
  for await (const p of await fromB.pull({ model: nameOnA('latest'), insecure: true, stream: true }))
    seen.push(p);
  assert.equal(seen[0].status, 'pulling manifest');
  assert.equal(seen.at(-1).status, 'success');
  const blobs = seen.filter((p) => p.digest);
  assert.ok(blobs.length > 0);
  for (const p of blobs) {
    assert.match(p.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(p.status, `pulling ${p.digest.slice(7, 19)}`);
    assert.ok(Number.isInteger(p.total) && p.total >= 0);
  }
  // The model layer is the fixture, byte for byte (its digest is the file's).
  const gguf = readFileSync(join(SHARED, 'fixtures', 'llama-Q4_K_M.gguf'));
  const want = 'sha256:' + createHash('sha256').update(gguf).digest('hex');
  const last = blobs.filter((p) => p.digest === want).at(-1);
  assert.ok(last, 'no progress for the model layer');
  assert.equal(last.completed, gguf.length);
  assert.equal(last.total, gguf.length);

  const { models } = await fromB.list();
  assert.ok(models.some((m) => m.name === nameOnA('latest')), JSON.stringify(models.map((m) => m.name)));
  const ask = { prompt: 'Once upon a time', stream: false,
                options: { temperature: 0, num_predict: 16, seed: 3 } };
  const ra = await new Ollama({ host: a.host }).generate({ ...ask, model: 'shared' });
  const rb = await fromB.generate({ ...ask, model: nameOnA('latest') });
  assert.ok(ra.response.length > 0);
  assert.equal(rb.response, ra.response);
});

test('pull without streaming, and an unknown model', async () => {
  const r = await fromB.pull({ model: nameOnA('v2'), insecure: true, stream: false });
  assert.equal(r.status, 'success');
  await assert.rejects(fromB.pull({ model: nameOnA('missing'), insecure: true, stream: false }),
                       (e) => e.status_code === 404 && /not found/.test(e.message));
});
