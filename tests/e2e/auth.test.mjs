// End-to-end: the API key of a server listening beyond loopback (server/auth.h). Servers bind
// 0.0.0.0 and are reached through 127.0.0.1; the official openai and ollama clients, the hearth
// CLI and the web UI in headless Chromium all get in with the key and only with it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { chromium } from 'playwright-core';
import { HEARTH, SHARED, startServer } from './harness.mjs';

const GGUF = join(SHARED, 'fixtures', 'qwen3-Q8_0.gguf');
const CHROMIUM = process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium';
const KEY = 'e2e-key-' + Math.random().toString(36).slice(2);
// None of the user's settings may leak in: each server gets its own HOME too.
const CLEAN = { HEARTH_API_KEY: '', HEARTH_API_KEY_FILE: '', HEARTH_NO_AUTH: '' };

const homes = [];
function tempHome() {
  const h = mkdtempSync(join(tmpdir(), 'hearth-e2e-home-'));
  homes.push(h);
  return h;
}

let srv, home;
const bearer = (k = KEY) => ({ Authorization: `Bearer ${k}` });

before(async () => {
  home = tempHome();
  srv = await startServer({ ...CLEAN, HOME: home, HEARTH_API_KEY: KEY },
                         { bind: '0.0.0.0', key: KEY, captureLog: true });
  await srv.create('qwen3', GGUF);
});

after(() => {
  srv?.stop();
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

async function expect401(path, headers = {}, { openai = false, sent = false } = {}) {
  const r = await fetch(srv.host + path, { headers });
  assert.equal(r.status, 401, path);
  assert.equal(r.headers.get('www-authenticate'), 'Bearer');
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const j = await r.json();
  const msg = openai ? j.error.message : j.error;
  assert.equal(typeof msg, 'string', JSON.stringify(j));
  if (openai) assert.equal(j.error.type, 'invalid_request_error');
  assert.match(msg, sent ? /^invalid API key/ : /requires an API key/);
  assert.match(msg, /Authorization: Bearer <key>/);
  assert.match(msg, /HEARTH_API_KEY/);
  return msg;
}

test('without the key: 401 with a JSON error, WWW-Authenticate and how to fix it', async () => {
  await expect401('/api/tags');
  await expect401('/api/version');
  await expect401('/v1/models', {}, { openai: true });
  await expect401('/ui/api/chats');
  await expect401('/v2/');
  // A wrong key, another scheme, an empty one.
  await expect401('/api/tags', bearer('wrong'), { sent: true });
  await expect401('/api/tags', bearer(KEY + 'x'), { sent: true });
  await expect401('/v1/models', bearer(KEY.slice(0, -1)), { openai: true, sent: true });
  await expect401('/api/tags', { Authorization: `Basic ${KEY}` }, { sent: true });
  await expect401('/api/tags', { Authorization: 'Bearer ' }, { sent: true });
  // The key is never part of an answer.
  const r = await fetch(srv.host + '/api/tags', { headers: bearer('wrong') });
  assert.ok(!(await r.text()).includes(KEY));
});

test('an upload without the key is refused before its body is stored', async () => {
  const body = Buffer.from('not a model');
  const digest = 'sha256:' + (await import('node:crypto')).createHash('sha256').update(body).digest('hex');
  const r = await fetch(`${srv.host}/api/blobs/${digest}`, { method: 'POST', body });
  assert.equal(r.status, 401);
  const head = await fetch(`${srv.host}/api/blobs/${digest}`, { method: 'HEAD', headers: bearer() });
  assert.equal(head.status, 404);
});

test('with the key: 200 on the Ollama, OpenAI and UI APIs (scheme in any case)', async () => {
  let r = await fetch(srv.host + '/api/tags', { headers: bearer() });
  assert.equal(r.status, 200);
  assert.deepEqual((await r.json()).models.map((m) => m.name), ['qwen3:latest']);
  r = await fetch(srv.host + '/v1/models', { headers: bearer() });
  assert.equal(r.status, 200);
  assert.deepEqual((await r.json()).data.map((m) => m.id), ['qwen3:latest']);
  r = await fetch(srv.host + '/ui/api/chats', { headers: bearer() });
  assert.equal(r.status, 200);
  r = await fetch(srv.host + '/api/tags', { headers: { Authorization: `bearer ${KEY}` } });
  assert.equal(r.status, 200);
});

test('public without a key: the probe, the UI page and its assets', async () => {
  let r = await fetch(srv.host);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'Ollama is running');
  r = await fetch(srv.host, { method: 'HEAD' });
  assert.equal(r.status, 200);
  r = await fetch(srv.host, { headers: { Accept: 'text/html' } });
  assert.equal(r.status, 200);
  const html = await r.text();
  const js = html.match(/src="(\/ui\/assets\/[^"]+\.js)"/)[1];
  r = await fetch(srv.host + js);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /javascript/);
  // Only GET and HEAD are public there.
  r = await fetch(srv.host, { method: 'POST' });
  assert.equal(r.status, 401);
});

test('browser rules still apply: allowed preflights need no key, other origins are refused', async () => {
  const origin = 'http://localhost:3000';
  let r = await fetch(srv.host + '/api/chat', {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'POST',
               'Access-Control-Request-Headers': 'authorization, content-type' },
  });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('access-control-allow-origin'), origin);
  assert.match(r.headers.get('access-control-allow-headers'), /Authorization/);
  // An allowed page without the key can read why it was refused (CORS headers on the 401).
  r = await fetch(srv.host + '/api/tags', { headers: { Origin: origin } });
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('access-control-allow-origin'), origin);
  r = await fetch(srv.host + '/api/tags', { headers: { Origin: origin, ...bearer() } });
  assert.equal(r.status, 200);
  // Another origin is refused even with the key.
  r = await fetch(srv.host + '/api/tags', { headers: { Origin: 'https://evil.example', ...bearer() } });
  assert.equal(r.status, 403);
  r = await fetch(srv.host + '/api/tags', {
    method: 'OPTIONS', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'GET' },
  });
  assert.equal(r.status, 403);
});

test('the openai client with apiKey', async () => {
  const openai = new OpenAI({ baseURL: `${srv.host}/v1`, apiKey: KEY });
  const models = await openai.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['qwen3:latest']);
  const c = await openai.chat.completions.create({
    model: 'qwen3', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, seed: 1,
  });
  assert.equal(c.choices.length, 1);
  assert.ok(c.usage.completion_tokens > 0);
  const wrong = new OpenAI({ baseURL: `${srv.host}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
    assert.equal(e.status, 401);
    assert.match(e.message, /invalid API key/);
    return true;
  });
});

test('the ollama client with an Authorization header', async () => {
  const ollama = new Ollama({ host: srv.host, headers: bearer() });
  assert.deepEqual((await ollama.list()).models.map((m) => m.name), ['qwen3:latest']);
  const r = await ollama.chat({
    model: 'qwen3', messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 4, seed: 1 },
  });
  assert.equal(r.done, true);
  assert.ok(r.eval_count > 0);
  const without = new Ollama({ host: srv.host });
  await assert.rejects(without.list(), (e) => {
    assert.equal(e.status_code, 401);
    assert.match(e.message, /requires an API key/);
    return true;
  });
});

// `hearth <args>` as a client of the server; returns { status, stdout, stderr }.
function cli(args, env) {
  const port = new URL(srv.host).port;
  return spawnSync(HEARTH, args, {
    env: { ...process.env, ...CLEAN, HEARTH_HOST: `127.0.0.1:${port}`, ...env },
    encoding: 'utf8', timeout: 60000,
  });
}

test('the hearth CLI sends HEARTH_API_KEY', () => {
  const empty = tempHome();
  let r = cli(['list'], { HOME: empty, HEARTH_API_KEY: KEY });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /qwen3:latest/);
  r = cli(['list'], { HOME: empty });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /requires an API key/);
  r = cli(['list'], { HOME: empty, HEARTH_API_KEY: 'wrong' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /invalid API key/);
});

test('the log says where the key comes from, never the key', () => {
  assert.match(srv.log(), /API requests need the key in HEARTH_API_KEY/);
  assert.ok(!srv.log().includes(KEY));
});

test('no key set beyond loopback: ~/.hearth/api_key is generated (0600) and used', async () => {
  const h = tempHome();
  const s = await startServer({ ...CLEAN, HOME: h }, { bind: '0.0.0.0', captureLog: true });
  try {
    const file = join(h, '.hearth', 'api_key');
    assert.ok(existsSync(file));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const key = readFileSync(file, 'utf8').trim();
    assert.match(key, /^[A-Za-z0-9_-]{43}$/);
    assert.match(s.log(), new RegExp(`need the key in ${file}, generated now`));
    assert.ok(!s.log().includes(key));
    let r = await fetch(s.host + '/api/tags');
    assert.equal(r.status, 401);
    r = await fetch(s.host + '/api/tags', { headers: bearer(key) });
    assert.equal(r.status, 200);
    // The CLI on this machine reads the same file without being told.
    const port = new URL(s.host).port;
    const c = spawnSync(HEARTH, ['list'], {
      env: { ...process.env, ...CLEAN, HOME: h, HEARTH_HOST: `127.0.0.1:${port}` }, encoding: 'utf8',
    });
    assert.equal(c.status, 0, c.stderr);
  } finally {
    s.stop();
  }
  // A restart keeps the key.
  const before = readFileSync(join(h, '.hearth', 'api_key'), 'utf8');
  const s2 = await startServer({ ...CLEAN, HOME: h }, { bind: '0.0.0.0' });
  s2.stop();
  assert.equal(readFileSync(join(h, '.hearth', 'api_key'), 'utf8'), before);
});

test('HEARTH_API_KEY_FILE names the file', async () => {
  const h = tempHome();
  const file = join(h, 'keys', 'hearth.key');
  const s = await startServer({ ...CLEAN, HOME: h, HEARTH_API_KEY_FILE: file }, { bind: '0.0.0.0' });
  try {
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(!existsSync(join(h, '.hearth', 'api_key')));
    const r = await fetch(s.host + '/api/tags', { headers: bearer(readFileSync(file, 'utf8').trim()) });
    assert.equal(r.status, 200);
  } finally {
    s.stop();
  }
});

test('loopback stays keyless unless HEARTH_API_KEY is set; HEARTH_NO_AUTH opts out', async () => {
  const h = tempHome();
  let s = await startServer({ ...CLEAN, HOME: h });
  try {
    const r = await fetch(s.host + '/api/tags');
    assert.equal(r.status, 200);
    assert.ok(!existsSync(join(h, '.hearth', 'api_key')));
  } finally {
    s.stop();
  }
  s = await startServer({ ...CLEAN, HOME: h, HEARTH_API_KEY: KEY });
  try {
    assert.equal((await fetch(s.host + '/api/tags')).status, 401);
    assert.equal((await fetch(s.host + '/api/tags', { headers: bearer() })).status, 200);
  } finally {
    s.stop();
  }
  s = await startServer({ ...CLEAN, HOME: h, HEARTH_NO_AUTH: '1' }, { bind: '0.0.0.0', captureLog: true });
  try {
    assert.equal((await fetch(s.host + '/api/tags')).status, 200);
    assert.ok(!existsSync(join(h, '.hearth', 'api_key')));
    assert.match(s.log(), /warning: HEARTH_NO_AUTH is set/);
  } finally {
    s.stop();
  }
});

test('browser: the UI of a keyed server asks for the key, then lists the models', async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(srv.host);
    const dialog = page.locator('dialog.auth-dialog');
    await dialog.waitFor();
    assert.match(await dialog.textContent(), /~\/\.hearth\/api_key/);
    // A wrong key is refused and asked for again.
    await dialog.getByLabel('API key').fill('wrong');
    await dialog.getByRole('button', { name: 'Use key' }).click();
    await page.locator('dialog.auth-dialog', { hasText: 'refused' }).waitFor();
    await page.locator('dialog.auth-dialog').getByLabel('API key').fill(KEY);
    await page.locator('dialog.auth-dialog').getByRole('button', { name: 'Use key' }).click();
    await page.locator('select.model option', { hasText: 'qwen3:latest' }).waitFor({ state: 'attached' });
    assert.equal(await page.locator('dialog.auth-dialog').count(), 0);
    assert.equal(await page.evaluate(() => localStorage.getItem('hearth.key')), KEY);
    // A reload uses the stored key without asking.
    await page.reload();
    await page.locator('select.model option', { hasText: 'qwen3:latest' }).waitFor({ state: 'attached' });
    assert.equal(await page.locator('dialog.auth-dialog').count(), 0);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
