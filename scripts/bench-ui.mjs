#!/usr/bin/env node
// The web UI's figures (issue #18), on this machine, one run; not part of the test suite.
//
//   node scripts/bench-ui.mjs [--skip-ingest] [--ingest-kb 500] [--chats 10000] [--batches 32,1]
//
//  1. idle RSS of `hearth serve` with no model, after a browser loaded the UI (history opened);
//  2. first page load on loopback in headless Chromium, cold cache: response end,
//     DOMContentLoaded, load event and first contentful paint; median of 7;
//  3. the chat list with --chats conversations (imported): GET /ui/api/chats first page, a deep
//     page (keyset cursor), a search; and the page drawing its sidebar; medians;
//  4. ingest of a --ingest-kb KB Markdown document with a nomic-embed-text-shaped encoder
//     (tools/embed/mkbert.py --arch nomic-bert, 12 layers x 768, F16, random weights), chunks
//     embedded 32 per call (the default) and one per call (HEARTH_UI_EMBED_BATCH=1): tokens/s.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const require = createRequire(join(ROOT, 'tests/e2e/package.json'));
const { chromium } = require('playwright-core');
const HEARTH = resolve(process.env.HEARTH_BIN ?? join(ROOT, 'build/hearth'));
const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(n) ? Number(args[args.indexOf(n) + 1]) : d);
const CHATS = opt('--chats', 10000);
const INGEST_KB = opt('--ingest-kb', 500);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x) => `${x.toFixed(1)} ms`;

const freePort = () => new Promise((res) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => res(p));
  });
});

async function serve(env = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-ui-'));
  const port = await freePort();
  const proc = spawn(HEARTH, ['serve'], {
    env: { ...process.env, HEARTH_MODELS: join(dir, 'models'), HEARTH_HOST: `127.0.0.1:${port}`,
           HEARTH_UI_DB: join(dir, 'ui.sqlite'), ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const host = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(host)).ok) break; } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host, dir, proc, stop() { proc.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); } };
}

const rssMiB = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024;
const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)[1];
console.log(`CPU: ${cpu}, ${(await import('node:os')).cpus().length} threads`);

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
try {
  // 1 + 2: idle RSS and first load.
  {
    const s = await serve();
    const before = rssMiB(s.proc.pid);
    const loads = [];
    for (let i = 0; i < 7; i++) {
      const ctx = await browser.newContext();  // a cold cache each time
      const page = await ctx.newPage();
      const t0 = Date.now();
      await page.goto(s.host);
      await page.locator('select.model').waitFor();
      const wall = Date.now() - t0;
      const nav = await page.evaluate(() => {
        const n = performance.getEntriesByType('navigation')[0];
        const fcp = performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint');
        return { response: n.responseEnd, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd, fcp: fcp?.startTime ?? NaN };
      });
      loads.push({ ...nav, wall });
      await ctx.close();
    }
    await new Promise((r) => setTimeout(r, 1000));
    const after = rssMiB(s.proc.pid);
    console.log(`idle RSS: ${before.toFixed(1)} MiB at start, ${after.toFixed(1)} MiB after 7 page loads (UI served, history open)`);
    const m = (k) => median(loads.map((l) => l[k]));
    console.log(`first page load (cold cache, median of 7): response ${ms(m('response'))}, DOMContentLoaded ${ms(m('dcl'))}, ` +
                `load ${ms(m('load'))}, first contentful paint ${ms(m('fcp'))} (from navigation start; wall time to the model ` +
                `picker as playwright sees it ${m('wall')} ms)`);
    s.stop();
  }

  // 3: the chat list with CHATS conversations.
  {
    const s = await serve();
    const chats = [];
    for (let i = 0; i < CHATS; i++) {
      const t = 1700000000000 + i * 1000;
      chats.push({ id: `c${i}`, title: `Chat number ${i} about topic ${i % 97}`, model: 'm', system: '',
                   options: {}, current_leaf: `m${i}b`, created_at: t, updated_at: t,
                   messages: [
                     { id: `m${i}a`, parent_id: null, role: 'user', content: `Question ${i}: how do rivers ${i % 13} form?`, created_at: t },
                     { id: `m${i}b`, parent_id: `m${i}a`, role: 'assistant', content: `Answer ${i}: slowly, over time.`, created_at: t },
                   ] });
    }
    const t0 = performance.now();
    const imp = await fetch(`${s.host}/ui/api/import`, { method: 'POST', body: JSON.stringify({ version: 1, chats }) });
    if (!imp.ok) throw new Error(`import: ${imp.status} ${await imp.text()}`);
    console.log(`imported ${CHATS} chats in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const time = async (url, n = 21) => {
      const ts = [];
      let j;
      for (let i = 0; i < n; i++) {
        const a = performance.now();
        j = await (await fetch(s.host + url)).json();
        ts.push(performance.now() - a);
      }
      return [median(ts), j];
    };
    const [first, page1] = await time('/ui/api/chats?limit=50');
    let cursor = page1.next;
    for (let i = 0; i < 100 && cursor; i++) cursor = (await (await fetch(`${s.host}/ui/api/chats?limit=50&cursor=${cursor}`)).json()).next;
    const [deep] = await time(`/ui/api/chats?limit=50&cursor=${cursor}`);
    const [search, found] = await time('/ui/api/chats?limit=50&q=topic%2042');
    console.log(`chat list, ${CHATS} chats (median of 21, loopback HTTP): first page of 50 ${ms(first)}, ` +
                `page 101 ${ms(deep)}, search "topic 42" ${ms(search)} (${found.chats.length} shown)`);
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const draws = [];
    for (let i = 0; i < 5; i++) {
      const a = Date.now();
      await page.goto(s.host);
      await page.locator('.chat-list li').nth(49).waitFor();
      draws.push(Date.now() - a);
    }
    console.log(`page load to 50 chats in the sidebar (warm cache, median of 5): ${median(draws)} ms`);
    await ctx.close();
    s.stop();
  }

  // 4: ingest.
  if (!args.includes('--skip-ingest')) {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-ingest-'));
    const gguf = join(dir, 'nomic.gguf');
    execFileSync('/usr/bin/python3', [join(ROOT, 'tools/embed/mkbert.py'), gguf, '--arch', 'nomic-bert', '--n-embd', '768',
                                      '--n-layer', '12', '--n-head', '12', '--n-ff', '3072', '--dtype', 'F16'], { stdio: 'ignore' });
    const W = ('the a an and or of to in on is are was be it this that with for as at by from not hello world good ' +
               'morning day night cat dog house tree water fire play run walk talk quick brown fox jump over lazy ' +
               'test token model embed sentence vector').split(' ');
    let doc = '# A long document\n\n';
    let seed = 1;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let sec = 0; doc.length < INGEST_KB * 1024; sec++) {
      doc += `## Section ${sec}\n\n`;
      for (let p = 0; p < 4; p++) {
        const n = 40 + Math.floor(rnd() * 60);
        doc += Array.from({ length: n }, () => W[Math.floor(rnd() * W.length)]).join(' ') + '.\n\n';
      }
    }
    for (const batch of (args.includes('--batches') ? args[args.indexOf('--batches') + 1] : '32,1').split(',')) {
      const s = await serve({ HEARTH_UI_EMBED_BATCH: batch });
      const bytes = readFileSync(gguf);
      const digest = 'sha256:' + (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex');
      await fetch(`${s.host}/api/blobs/${digest}`, { method: 'POST', body: bytes });
      await fetch(`${s.host}/api/create`, { method: 'POST', body: JSON.stringify({ model: 'nomic', files: { 'nomic.gguf': digest }, stream: false }) });
      await fetch(`${s.host}/api/embed`, { method: 'POST', body: JSON.stringify({ model: 'nomic', input: 'warm up' }) });
      const t0 = performance.now();
      const d = await (await fetch(`${s.host}/ui/api/documents?chat=bench&name=long.md&embed_model=nomic`, { method: 'POST', body: doc })).json();
      let st;
      for (;;) {
        st = await (await fetch(`${s.host}/ui/api/documents/${d.id}`)).json();
        if (st.status === 'ready' || st.status === 'error') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const secs = (performance.now() - t0) / 1000;
      console.log(`ingest ${(doc.length / 1024).toFixed(0)} KB, ${st.chunks} chunks, ${st.tokens} tokens, ${batch} chunk(s) per call: ` +
                  `${secs.toFixed(1)} s, ${Math.round(st.tokens / secs)} tokens/s (${st.status})`);
      s.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  }
} finally {
  await browser.close();
}
