// End-to-end: the web UI's Models page (#/models) in a real headless Chromium, against a
// `hearth serve` that pulls from a registry on loopback (tests/differential/fake_registry.py,
// throttled so the progress bar is seen between empty and full). Screenshots of the list, a pull
// in progress and a model's details go to $HEARTH_ARTIFACTS (default build/artifacts/ui).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import { SHARED, startServer } from './harness.mjs';

const LOCAL = join(SHARED, 'fixtures', 'qwen3-Q8_0.gguf');
const REMOTE = join(SHARED, 'fixtures', 'qwen3-F16.gguf');  // 6.2 MB: about 3 s at RATE
const RATE = 2_000_000;  // registry bytes per second
const ARTIFACTS = resolve(process.env.HEARTH_ARTIFACTS ?? 'build/artifacts/ui');
const CHROMIUM = process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium';
const PYTHON = process.env.HEARTH_PYTHON ?? '/usr/bin/python3';

let srv, registry, browser, page, remoteName, missingName;
const consoleErrors = [];
let releaseFit;  // holds the first GET /api/fit until the list has shown without it

// The fake registry serving REMOTE as library/big:latest on a free port.
async function startRegistry() {
  const script = resolve('tests/differential/fake_registry.py');
  const proc = spawn(PYTHON, [script, '--port', '0', '--rate', String(RATE),
                              '--model', `library/big:latest=${REMOTE}`],
                     { stdio: ['ignore', 'pipe', 'inherit'] });
  for await (const line of createInterface({ input: proc.stdout })) {
    const m = line.match(/fake registry on http:\/\/([\d.]+:\d+)/);
    if (m) return { proc, host: m[1] };
  }
  throw new Error('the fake registry did not start');
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  srv = await startServer();
  await srv.create('qwen3', LOCAL);
  registry = await startRegistry();
  remoteName = `${registry.host}/library/big:latest`;
  missingName = `${registry.host}/library/missing:latest`;
  // CI runs as root, where Chromium's sandbox cannot start.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  const gate = new Promise((r) => (releaseFit = r));
  let held = false;
  await page.route((u) => u.pathname === '/api/fit' && !u.searchParams.has('model'), async (route) => {
    if (!held) {
      held = true;
      await gate;
    }
    await route.continue();
  });
});

after(async () => {
  await browser?.close();
  registry?.proc.kill('SIGTERM');
  srv?.stop();
});

const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const row = (name) => page.locator(`tr[data-model="${name}"]`);
const pullText = () => page.locator('.pull-status .pull-text');

async function tagNames() {
  const r = await fetch(`${srv.host}/api/tags`);
  return (await r.json()).models.map((m) => m.name);
}

// Records the progress bar's value and max every few ms while a pull runs.
const sampleProgress = () =>
  page.evaluate(() => {
    window.__progress = [];
    clearInterval(window.__sampler);
    window.__sampler = setInterval(() => {
      const p = document.querySelector('.pull-status progress');
      if (p && p.hasAttribute('max')) window.__progress.push([p.value, p.max]);
    }, 20);
  });

async function startPull(name) {
  await page.getByLabel('Model to pull').fill(name);
  const insecure = page.locator('.pull-form input[name="insecure"]');
  if (!(await insecure.isChecked())) await insecure.check();
  await page.getByRole('button', { name: 'Pull', exact: true }).click();
}

test('the chat header links to the Models page; the list shows before the fit verdicts', async () => {
  await page.goto(srv.host);
  await page.locator('select.model option', { hasText: 'qwen3:latest' }).waitFor({ state: 'attached' });
  await page.getByRole('link', { name: 'Models' }).click();
  assert.equal(new URL(page.url()).hash, '#/models');
  const r = row('qwen3:latest');
  await r.waitFor();
  // /api/fit is still held: the list is there with its verdicts pending.
  assert.equal(await r.locator('td.verdict').textContent(), 'checking…');
  assert.equal(await r.locator('td.size').textContent(), '3.3 MB');
  assert.equal(await r.locator('td.quant').textContent(), 'Q8_0');
  assert.equal(await r.locator('td.params').textContent(), '3M');
  await r.locator('td.ctx', { hasText: '4,096' }).waitFor();  // from /api/show
  releaseFit();
  await r.locator('td.verdict', { hasText: /^fits · ~\d+ tok\/s$/ }).waitFor();
  assert.match(await page.locator('.machine').textContent(), /threads · .* free of /);
});

test('a pull that fails shows the error', async () => {
  await startPull(missingName);
  const alert = page.locator('.pull-status [role="alert"]');
  await alert.waitFor();
  assert.match(await alert.textContent(), /Pull failed: .*not found/);
  assert.equal(await pullText().textContent(), 'failed');
  assert.equal(await page.getByRole('button', { name: 'Pull', exact: true }).isEnabled(), true);
});

test('pull: progress, cancel, resume; the list refreshes when done', async () => {
  // Cancel once the bar has moved: the server stops, the model is not in the store.
  await sampleProgress();
  await startPull(remoteName);
  await page.waitForFunction(() => {
    const p = document.querySelector('.pull-status progress');
    return p && p.hasAttribute('max') && p.value > 0 && p.value < p.max * 0.6;
  });
  assert.match(await pullText().textContent(), /^pulling [0-9a-f]{12} · [\d.]+ [KMG]?B of [\d.]+ MB$/);
  await shot('models-pull');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await pullText().filter({ hasText: /^cancelled/ }).waitFor();
  assert.equal(await page.locator('.pull-status progress').count(), 0);
  assert.ok(!(await tagNames()).includes(remoteName));
  assert.equal(await row(remoteName).count(), 0);

  // Again: it resumes and runs to the end.
  await sampleProgress();
  await startPull(remoteName);
  await pullText().filter({ hasText: /^success$/ }).waitFor({ timeout: 60000 });
  const samples = await page.evaluate(() => {
    clearInterval(window.__sampler);
    return window.__progress;
  });
  const mid = samples.filter(([v, max]) => v > 0 && v < max);
  assert.ok(mid.length >= 2, `the bar should be seen part-way: ${JSON.stringify(samples)}`);
  for (let i = 1; i < samples.length; i++)
    assert.ok(samples[i][0] >= samples[i - 1][0], `progress went back: ${JSON.stringify(samples)}`);
  assert.ok(samples.at(-1)[0] > samples[0][0]);

  const r = row(remoteName);
  await r.waitFor();
  assert.equal(await r.locator('td.size').textContent(), '6.2 MB');
  assert.equal(await r.locator('td.quant').textContent(), 'F16');
  await r.locator('td.verdict', { hasText: /^fits · ~\d+ tok\/s$/ }).waitFor();
  assert.ok((await tagNames()).includes(remoteName));
  await shot('models');
});

test('back in the chat the pulled model can be picked; the pull stays on the Models page', async () => {
  await page.getByRole('link', { name: '← Chat' }).click();
  assert.equal(new URL(page.url()).hash, '#/');
  await page.locator('select.model option', { hasText: remoteName }).waitFor({ state: 'attached' });
  await page.getByRole('link', { name: 'Models' }).click();
  await pullText().filter({ hasText: /^success$/ }).waitFor();
  await row(remoteName).waitFor();
});

test('details: Modelfile, parameters, template, capabilities and the fit report', async () => {
  await row(remoteName).getByRole('button', { name: 'Details' }).click();
  const d = page.locator('.model-details');
  await d.locator('h2', { hasText: remoteName }).waitFor();
  await d.locator('pre.template', { hasText: '<|im_start|>' }).waitFor();
  assert.match(await d.locator('pre.modelfile').textContent(), /^FROM /m);
  assert.match(await d.locator('pre.parameters').textContent(), /num_ctx/);
  await d.locator('dd', { hasText: 'completion' }).waitFor();
  // The full report (GET /api/fit?model=...): the memory breakdown and the other quantizations.
  await d.locator('.fit-report dt', { hasText: 'KV cache' }).waitFor();
  await d.locator('.fit-report td', { hasText: 'Q4_K_M' }).waitFor();
  assert.match(await d.locator('.fit-report').textContent(), /needs .* at \d+ tokens of context/);
  await shot('models-details');
});

test('delete asks first, then the model is gone', async () => {
  const r = row(remoteName);
  await r.getByRole('button', { name: 'Delete' }).click();
  await r.getByRole('button', { name: 'Keep' }).click();
  assert.ok((await tagNames()).includes(remoteName), 'Keep deletes nothing');
  await r.getByRole('button', { name: 'Delete' }).click();
  await r.locator('button.confirm-delete').click();
  await r.waitFor({ state: 'detached' });
  assert.ok(!(await tagNames()).includes(remoteName));
  assert.equal(await page.locator('.model-details').count(), 0, 'its details closed');
  await row('qwen3:latest').waitFor();
});

test('a model too large for this machine says why', async () => {
  // A server whose memory limit is below what the fixture needs at its context.
  const small = await startServer({ HEARTH_MAX_MEMORY: '8M' });
  try {
    await small.create('qwen3', LOCAL);
    await page.goto(`${small.host}/#/models`);
    const v = row('qwen3:latest').locator('td.verdict');
    await v.filter({ hasText: /^too large: needs .* MiB/ }).waitFor({ timeout: 60000 });
    await row('qwen3:latest').getByRole('button', { name: 'Details' }).click();
    await page.locator('.fit-report .fit.too_large').first().waitFor();
  } finally {
    small.stop();
  }
});

test('no console errors', () => {
  assert.deepEqual(consoleErrors, []);
});
