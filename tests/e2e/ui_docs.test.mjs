// End-to-end: documents in the browser UI (Documents panel, web/src/Documents.jsx) in real
// headless Chromium: upload a Markdown file and a PDF into a chat, watch them index, ask a
// question that waits for a large upload to finish indexing, see the cited passages under the
// answer, check the prompt sent to the model contained them, and delete a document.
// Screenshots go to $HEARTH_ARTIFACTS (default build/artifacts/ui).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { SHARED, startServer } from './harness.mjs';
import { makePdf } from './pdf.mjs';

const GGUF = join(SHARED, 'fixtures', 'qwen3-Q8_0.gguf');
const ARTIFACTS = resolve(process.env.HEARTH_ARTIFACTS ?? 'build/artifacts/ui');
const CHROMIUM = process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium';

let srv, browser, page, dir;
const consoleErrors = [];
const chatBodies = [];  // every POST /api/chat body the page sent
const retrievals = [];  // every /ui/api/retrieve: [request body, response body]

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'hearth-e2e-uidocs-'));
  const bert = join(dir, 'bert.gguf');
  execFileSync('/usr/bin/python3', ['tools/embed/mkbert.py', bert, '--pooling', 'mean', '--dtype', 'F16',
                                    '--n-ctx', '512']);
  srv = await startServer();
  // Short answers: the random model would otherwise write until its context is full.
  await srv.create('qwen3', GGUF, { parameters: { num_predict: 24 } });
  await srv.create('minilm', bert);
  const rr = join(dir, 'rerank.gguf');
  execFileSync('/usr/bin/python3', ['tools/embed/mkbert.py', rr, '--pooling', 'rank', '--dtype', 'F16', '--n-ctx', '512']);
  await srv.create('reranker', rr);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('request', (r) => {
    if (r.url().endsWith('/api/chat') && r.method() === 'POST') chatBodies.push(JSON.parse(r.postData()));
  });
  page.on('dialog', (d) => d.accept());
  page.on('response', async (r) => {
    if (r.url().endsWith('/ui/api/retrieve'))
      retrievals.push([JSON.parse(r.request().postData()), await r.json().catch(() => null)]);
  });
  page.on('response', async (r) => {
    if (r.status() >= 400) consoleErrors.push(`${r.request().method()} ${r.url()}: ${r.status()} ${await r.text().catch(() => '')}`);
  });
});

after(async () => {
  await browser?.close();
  srv?.stop();
});

const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const idle = () => page.locator('button.send').waitFor();
const api = (p) => fetch(`${srv.host}/ui/api${p}`).then((r) => r.json());

const GUIDE = `# Lighthouse keeping

## Lamps

The lamp is lit at sunset and trimmed every four hours. Paraffin is stored in the oil house.

## Fog

In fog the keeper sounds the horn twice a minute until the fog lifts.
`;

test('the Documents panel uploads a Markdown file and a PDF and shows them indexed', async () => {
  await page.goto(srv.host);
  await page.locator('select.model option', { hasText: 'qwen3:latest' }).waitFor({ state: 'attached' });
  await page.locator('button.toggle-docs').click();
  const panel = page.locator('aside.documents');
  await panel.waitFor();
  // Only the embedding model is offered for embedding.
  await panel.locator('select[name="embed_model"] option', { hasText: 'minilm:latest' }).waitFor({ state: 'attached' });
  assert.equal(await panel.locator('select[name="embed_model"] option', { hasText: 'qwen3' }).count(), 0);
  await panel.locator('select[name="embed_model"]').selectOption('minilm:latest');
  const md = join(dir, 'lighthouse.md');
  writeFileSync(md, GUIDE);
  const pdf = join(dir, 'ledger.pdf');
  writeFileSync(pdf, makePdf([['The supply boat arrives on Thursdays with coal and letters.']]));
  await panel.locator('input[type="file"]').setInputFiles([md, pdf]);
  await panel.locator('li.doc', { hasText: 'lighthouse.md' }).waitFor();
  await panel.locator('li.doc[data-status="ready"]', { hasText: 'lighthouse.md' }).waitFor();
  await panel.locator('li.doc[data-status="ready"]', { hasText: 'ledger.pdf' }).waitFor();
  // The chat exists on the server now (the upload made it) and its address names it.
  const id = decodeURIComponent(new URL(page.url()).hash.replace('#/c/', ''));
  assert.ok(id && !id.startsWith('local-'), page.url());
  const docs = (await api(`/documents?chat=${id}`)).documents;
  assert.deepEqual(docs.map((d) => [d.name, d.status, d.embed_model]),
                   [['lighthouse.md', 'ready', 'minilm:latest'], ['ledger.pdf', 'ready', 'minilm:latest']]);
  await shot('documents');
});

test('a question waits for indexing, goes with the retrieved passages and shows them as sources', async () => {
  const panel = page.locator('aside.documents');
  // A large file (~250 KB) that takes a while to embed, with the answer at its end.
  let big = '# Ship log\n\n';
  for (let i = 0; i < 1500; i++)
    big += `## Day ${i}\n\nWind from the west, light swell, all hands well, the watch kept as ordered.\n\n`;
  big += '## Stores\n\nThe quartermaster keeps the brass key under the third lantern.\n';
  const log = join(dir, 'shiplog.md');
  writeFileSync(log, big);
  await panel.locator('input[type="file"]').setInputFiles([log]);
  await panel.locator('li.doc', { hasText: 'shiplog.md' }).waitFor();
  await page.getByLabel('Message').fill('Where does the quartermaster keep the brass key?');
  await page.getByLabel('Message').press('Enter');
  // The question waits for the index: the progress shows, and no /api/chat goes out meanwhile.
  await page.locator('.indexing').waitFor();
  assert.equal(chatBodies.length, 0);
  await page.locator('.msg.assistant').waitFor();
  await idle();
  assert.equal(chatBodies.length, 1);
  const sent = chatBodies[0].messages.at(-1);
  assert.equal(sent.role, 'user');
  // The prompt the model got holds the passage from the big file, numbered, then the question.
  assert.match(sent.content, /<sources>/);
  assert.match(sent.content, /\[1\] /);
  assert.match(sent.content, /brass key under the third lantern/);
  assert.match(sent.content, /Question: Where does the quartermaster keep the brass key\?$/);
  // The chat shows the question as typed, and the answer its sources.
  assert.equal(await page.locator('.msg.user .bubble').last().textContent(),
               'Where does the quartermaster keep the brass key?');
  const sources = page.locator('.msg.assistant details.sources');
  await sources.waitFor();
  assert.match(await sources.locator('summary').textContent(), /shiplog\.md/);
  await sources.locator('summary').click();
  await sources.locator('.passage', { hasText: 'brass key under the third lantern' }).waitFor();
  await shot('documents-sources');

  // The history keeps what the model got, so the next turn sends the same prefix.
  await page.getByLabel('Message').fill('What does the keeper do in fog?');
  await page.getByLabel('Message').press('Enter');
  await page.locator('.msg.assistant').nth(1).waitFor();
  await idle();
  const second = chatBodies[1].messages;
  assert.deepEqual(second.slice(0, 2), chatBodies[0].messages.concat([second[1]]).slice(0, 2));
  assert.equal(second[0].content, sent.content);
  assert.match(second.at(-1).content, /<sources>[^]*Question: What does the keeper do in fog\?$/);
  // After a reload the sources are still there (saved with the question).
  await page.reload();
  await page.locator('.msg.assistant details.sources').first().waitFor();
});

test('a rerank model picked in the panel re-scores the passages', async () => {
  const panel = page.locator('aside.documents');
  if (!(await panel.isVisible())) await page.locator('button.toggle-docs').click();
  await panel.locator('select[name="rerank_model"] option', { hasText: 'reranker:latest' }).waitFor({ state: 'attached' });
  await panel.locator('select[name="rerank_model"]').selectOption('reranker:latest');
  // Neither embedding-only nor rerank models are offered for chat.
  assert.equal(await page.locator('select.model option', { hasText: 'reranker' }).count(), 0);
  const n = retrievals.length;
  await page.getByLabel('Message').fill('When does the supply boat arrive?');
  await page.getByLabel('Message').press('Enter');
  await page.locator('.msg.assistant').nth(2).waitFor();
  await idle();
  const [body, answer] = retrievals.at(-1);
  assert.equal(retrievals.length, n + 1);
  assert.equal(body.rerank_model, 'reranker:latest');
  assert.equal(answer.mode, 'hybrid+rerank');
  assert.ok(answer.passages.length > 0);
  await panel.locator('select[name="rerank_model"]').selectOption('');
});

test('deleting a document takes it out of the panel and the library', async () => {
  const panel = page.locator('aside.documents');
  if (!(await panel.isVisible())) await page.locator('button.toggle-docs').click();
  const row = panel.locator('li.doc', { hasText: 'ledger.pdf' });
  await row.waitFor();
  const id = decodeURIComponent(new URL(page.url()).hash.replace('#/c/', ''));
  const before = (await api(`/documents?chat=${id}`)).documents.find((d) => d.name === 'ledger.pdf');
  await row.getByRole('button', { name: 'Delete ledger.pdf' }).click();
  await row.waitFor({ state: 'detached' });
  const r = await fetch(`${srv.host}/ui/api/documents/${before.id}`);
  assert.equal(r.status, 404);
  assert.deepEqual(consoleErrors, []);
});
