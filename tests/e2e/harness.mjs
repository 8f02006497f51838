// A `hearth serve` on a free loopback port with its own model store, for the end-to-end tests.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const HEARTH = resolve(process.env.HEARTH_BIN ?? 'build/hearth');
export const SHARED = resolve(process.env.HEARTH_SHARED ?? '../shared');

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

// Starts the server; returns { host, stop(), create(name, ggufPath) }. `bind`: the address it
// listens on (the tests still connect to 127.0.0.1); `key`: the API key create() sends;
// `captureLog`: keep what the server writes to stderr for log() instead of passing it through.
export async function startServer(env = {}, { bind = '127.0.0.1', key, captureLog } = {}) {
  const models = mkdtempSync(join(tmpdir(), 'hearth-e2e-'));
  // The web chat's history database: one per server, never the user's ~/.hearth/ui.sqlite.
  const uidir = mkdtempSync(join(tmpdir(), 'hearth-e2e-ui-'));
  const port = await freePort();
  const host = `http://127.0.0.1:${port}`;
  const server = spawn(HEARTH, ['serve'], {
    env: { ...process.env, HEARTH_MODELS: models, HEARTH_HOST: `${bind}:${port}`,
           HEARTH_NUM_PARALLEL: '4', HEARTH_UI_DB: join(uidir, 'ui.sqlite'), ...env },
    stdio: ['ignore', 'ignore', captureLog ? 'pipe' : 'inherit'],
  });
  let log = '';
  server.stderr?.on('data', (d) => (log += d));
  await waitUp(host);
  const auth = key ? { Authorization: `Bearer ${key}` } : {};
  return {
    host,
    models,
    log: () => log,
    stop() {
      server.kill('SIGTERM');
      rmSync(models, { recursive: true, force: true });
      rmSync(uidir, { recursive: true, force: true });
    },
    // Uploads the GGUF as a blob (what `ollama create` and Open WebUI do) and creates a model.
    async create(name, gguf, extra = {}) {
      const bytes = readFileSync(gguf);
      const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
      const up = await fetch(`${host}/api/blobs/${digest}`, { method: 'POST', body: bytes,
                                                              headers: auth });
      assert.ok(up.status === 201 || up.status === 200, `blob upload: ${up.status}`);
      const r = await fetch(`${host}/api/create`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ model: name, files: { [`${name}.gguf`]: digest }, stream: false,
                               ...extra }),
      });
      assert.equal(r.status, 200, await r.text());
    },
  };
}
