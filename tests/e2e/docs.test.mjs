// End-to-end: documents for the web chat through `hearth serve` (/ui/api/documents,
// /collections, /retrieve): upload Markdown and PDF into a chat, background ingest through a
// real (random-weight) embedding model, hybrid retrieval, limits and hostile files, deletion.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './harness.mjs';
import { makePdf } from './pdf.mjs';

let srv;
const CHAT = 'e2e-chat-1';

const GUIDE = `# Lighthouse keeping

## Lamps

The lamp is lit at sunset and trimmed every four hours. Paraffin is stored in the oil house.

## Fog

In fog the keeper sounds the horn twice a minute until the fog lifts.
`;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-e2e-docs-'));
  const gguf = join(dir, 'bert.gguf');
  execFileSync('/usr/bin/python3', ['tools/embed/mkbert.py', gguf, '--pooling', 'mean',
                                    '--dtype', 'F16', '--n-ctx', '512']);
  srv = await startServer({ HEARTH_UI_MAX_DOCUMENT: String(1 << 20) });
  await srv.create('minilm', gguf);
});

after(() => srv?.stop());

const api = (path, init) => fetch(`${srv.host}/ui/api${path}`, init);

async function upload(name, body, query) {
  const r = await api(`/documents?${query}&name=${encodeURIComponent(name)}&embed_model=minilm`,
                      { method: 'POST', body });
  return { status: r.status, json: await r.json() };
}

async function waitDone(id) {
  for (let i = 0; i < 600; i++) {
    const d = await (await api(`/documents/${id}`)).json();
    if (d.status === 'ready' || d.status === 'error') return d;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('ingest did not finish');
}

test('Markdown and PDF uploads are ingested, embedded and retrieved with their sources', async () => {
  const md = await upload('lighthouse.md', GUIDE, `chat=${CHAT}`);
  assert.equal(md.status, 202, JSON.stringify(md.json));
  assert.equal(md.json.kind, 'markdown');
  assert.ok(['queued', 'extracting', 'embedding'].includes(md.json.status));
  const pdf = await upload('ledger.pdf', makePdf([
    ['The supply boat arrives on Thursdays with coal and letters.'],
    ['Storm damage to the gallery railing was repaired in March.'],
  ]), `chat=${CHAT}`);
  assert.equal(pdf.status, 202);
  assert.equal(pdf.json.kind, 'pdf');
  const a = await waitDone(md.json.id);
  const b = await waitDone(pdf.json.id);
  assert.equal(a.status, 'ready', a.error);
  assert.equal(b.status, 'ready', b.error);
  assert.ok(a.chunks >= 1 && a.embedded === a.chunks, JSON.stringify(a));
  assert.ok(b.embedded === b.chunks && b.chunks >= 1);
  assert.equal(a.embed_model, 'minilm');
  assert.ok(a.tokens > 0);

  const list = await (await api(`/documents?chat=${CHAT}`)).json();
  assert.deepEqual(list.documents.map((d) => d.name), ['lighthouse.md', 'ledger.pdf']);

  const ask = async (query, extra = {}) => {
    const r = await api('/retrieve', { method: 'POST',
      body: JSON.stringify({ query, chat: CHAT, k: 3, model: 'minilm', ...extra }) });
    assert.equal(r.status, 200);
    return r.json();
  };
  const fog = await ask('What does the keeper do in fog?');
  assert.equal(fog.mode, 'hybrid');
  assert.ok(fog.passages.length >= 1);
  // Random weights give the vector side no meaning; the keyword side puts the fog passage in.
  const hit = fog.passages.find((p) => p.text.includes('sounds the horn'));
  assert.ok(hit, JSON.stringify(fog.passages));
  assert.equal(hit.document, 'lighthouse.md');
  assert.match(hit.headings, /Lighthouse keeping/);  // one chunk: the document is small
  assert.deepEqual(fog.passages.map((p) => p.n), fog.passages.map((_, i) => i + 1));
  const boat = await ask('When does the supply boat come?', { mode: 'keyword' });
  assert.equal(boat.mode, 'keyword');
  assert.equal(boat.passages[0].document, 'ledger.pdf');
  assert.match(boat.passages[0].text, /Thursdays/);
  // A token budget is respected (tokens by the named model's tokenizer).
  const tight = await ask('lamp fog boat storm', { budget: fog.passages[0].tokens, k: 5 });
  assert.ok(tight.passages.reduce((s, p) => s + p.tokens, 0) <= fog.passages[0].tokens);

  // Deleting a document takes its passages out of retrieval.
  assert.equal((await api(`/documents/${pdf.json.id}`, { method: 'DELETE' })).status, 204);
  const gone = await ask('When does the supply boat come?', { mode: 'keyword' });
  assert.ok(gone.passages.every((p) => p.document !== 'ledger.pdf'));
  assert.equal((await api(`/documents/${pdf.json.id}`)).status, 404);
});

test('named collections hold documents any chat can search', async () => {
  const c = await api('/collections', { method: 'POST', body: JSON.stringify({ name: 'manuals' }) });
  assert.equal(c.status, 201);
  const coll = await c.json();
  assert.equal((await api('/collections', { method: 'POST',
    body: JSON.stringify({ name: 'manuals' }) })).status, 400);
  const d = await upload('pump.txt', 'The bilge pump handle is kept behind the stove.',
                         `collection=${coll.id}`);
  assert.equal((await waitDone(d.json.id)).status, 'ready');
  const r = await (await api('/retrieve', { method: 'POST', body: JSON.stringify({
    query: 'where is the bilge pump handle', collections: [coll.id] }) })).json();
  assert.match(r.passages[0].text, /behind the stove/);
  const names = (await (await api('/collections')).json()).collections.map((x) => x.name);
  assert.deepEqual(names, ['manuals']);
  assert.equal((await api(`/collections/${coll.id}`, { method: 'DELETE' })).status, 204);
  assert.equal((await api(`/documents/${d.json.id}`)).status, 404);
});

test('oversize, empty, hostile and malformed uploads get clear errors', async () => {
  const big = await upload('big.txt', 'x'.repeat((1 << 20) + 1), `chat=${CHAT}`);
  assert.equal(big.status, 413);
  assert.match(big.json.error, /larger than 1 MiB/);
  assert.equal((await upload('e.txt', '', `chat=${CHAT}`)).status, 400);
  assert.equal((await upload('x.txt', 'hello', 'nothing=1')).status, 400);
  const bad = await upload('broken.pdf', '%PDF-1.4\n1 0 obj << /Type /Catalog', `chat=${CHAT}`);
  assert.equal(bad.status, 202);
  const d = await waitDone(bad.json.id);
  assert.equal(d.status, 'error');
  assert.ok(d.error.length > 0);
  // A PDF with pages but no text (as a scan would be).
  const blank = await upload('scan.pdf', makePdf([[]]), `chat=${CHAT}`);
  const e = await waitDone(blank.json.id);
  assert.equal(e.status, 'error');
  assert.match(e.error, /no text/);
  for (const body of ['', '[]', '{"query": 5}', '{"query": "x", "k": 0}', '{"query":"x","collections":"a"}']) {
    const r = await api('/retrieve', { method: 'POST', body });
    assert.equal(r.status, 400, body);
    assert.ok((await r.json()).error);
  }
  assert.equal((await api('/documents/nope')).status, 404);
  assert.equal((await api('/documents', { method: 'PUT' })).status, 405);
  // The server is still up and serving.
  assert.equal((await fetch(`${srv.host}/api/version`)).status, 200);
});

test('a chat deleted from the history takes its documents along; reads make no collection', async () => {
  assert.deepEqual((await (await api('/documents?chat=never-seen')).json()).documents, []);
  const chat = await (await api('/chats', { method: 'POST', body: JSON.stringify({ title: 'with docs' }) })).json();
  const d = await upload('notes.md', '# Notes\n\nThe well is forty feet deep.', `chat=${chat.id}`);
  assert.equal((await waitDone(d.json.id)).status, 'ready');
  assert.equal((await api(`/chats/${chat.id}`, { method: 'DELETE' })).status, 204);
  assert.equal((await api(`/documents/${d.json.id}`)).status, 404);
  assert.deepEqual((await (await api(`/documents?chat=${chat.id}`)).json()).documents, []);
  // Another chat's documents are untouched.
  const left = (await (await api(`/documents?chat=${CHAT}`)).json()).documents;
  assert.ok(left.some((x) => x.name === 'lighthouse.md'));
});
