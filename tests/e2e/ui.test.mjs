// End-to-end: the browser UI served by `hearth serve`, in a real headless Chromium (Debian's
// `chromium`, driven by playwright-core). The fixture model has random weights, so answers are
// gibberish, but they stream like real ones. Screenshots of the main screens are saved to
// $HEARTH_ARTIFACTS (default build/artifacts/ui).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { SHARED, startServer } from './harness.mjs';

const GGUF = join(SHARED, 'fixtures', 'qwen3-Q8_0.gguf');
const ARTIFACTS = resolve(process.env.HEARTH_ARTIFACTS ?? 'build/artifacts/ui');
const CHROMIUM = process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium';
const LONG = 100000;  // num_predict for answers that run until stopped

let srv, browser, page;
const consoleErrors = [];
const requests = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  srv = await startServer();
  await srv.create('qwen3', GGUF);
  // CI runs as root, where Chromium's sandbox cannot start.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.host });
  page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('request', (r) => requests.push(r.url()));
});

after(async () => {
  await browser?.close();
  srv?.stop();
});

const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const composer = () => page.getByLabel('Message');
const answers = () => page.locator('.msg.assistant');
const lastAnswer = () => answers().last();
const idle = () => page.locator('button.send').waitFor();  // Send is back once an answer ends

async function send(text) {
  await composer().fill(text);
  await composer().press('Enter');
}

async function openOptions() {
  if (!(await page.locator('.options').isVisible())) await page.getByRole('button', { name: 'Options' }).click();
}

async function setOption(name, value) {
  await openOptions();
  await page.locator(`.options [name="${name}"]`).fill(String(value));
}

// The history API, from the test's side.
async function ui(method, path, body) {
  const r = await fetch(`${srv.host}/ui/api${path}`, {
    method, headers: body ? { 'Content-Type': 'application/json' } : {}, body: body && JSON.stringify(body),
  });
  assert.ok(r.ok, `${method} ${path}: ${r.status}`);
  return r.status === 204 ? null : r.json();
}
const allChats = async () => (await ui('GET', '/chats?limit=200')).chats;
// The chat the URL names.
const openChatId = () => decodeURIComponent(new URL(page.url()).hash.replace(/^#\/c\//, ''));

// Polls until fn() (against the server) is truthy: the UI saves in the background.
async function until(fn, what) {
  for (let i = 0; i < 200; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

// Waits until the streaming answer shows at least `n` characters.
const answerLonger = (n) =>
  page.waitForFunction((n) => {
    const a = [...document.querySelectorAll('.msg.assistant')].pop();
    return a && a.classList.contains('streaming') && a.textContent.length > n;
  }, n);

test('GET /: API clients get the probe text, browsers the UI; assets are embedded', async () => {
  for (const headers of [{}, { Accept: '*/*' }, { Accept: 'application/json' }]) {
    const r = await fetch(srv.host, { headers });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'Ollama is running');
    assert.match(r.headers.get('content-type'), /^text\/plain/);
  }
  const accept = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
  const r = await fetch(srv.host, { headers: { Accept: accept } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.match(r.headers.get('content-security-policy'), /script-src 'self'/);
  assert.match(r.headers.get('vary'), /Accept/);
  const html = await r.text();
  assert.match(html, /<div id="app">/);
  const head = await fetch(srv.host, { method: 'HEAD', headers: { Accept: accept, 'Accept-Encoding': 'identity' } });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers.get('content-length')), Buffer.byteLength(html));

  const js = html.match(/\/ui\/assets\/(app-[A-Z0-9]+\.js)/)[1];
  const a = await fetch(`${srv.host}/ui/assets/${js}`, { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(a.status, 200);
  assert.match(a.headers.get('content-type'), /^text\/javascript/);
  assert.equal(a.headers.get('content-encoding'), 'gzip');
  assert.match(a.headers.get('cache-control'), /immutable/);
  assert.ok((await a.text()).length > 1000);  // fetch decompressed it
  const again = await fetch(`${srv.host}/ui/assets/${js}`,
                            { headers: { 'Accept-Encoding': 'gzip', 'If-None-Match': a.headers.get('etag') } });
  assert.equal(again.status, 304);

  const missing = await fetch(`${srv.host}/ui/assets/nope.js`);
  assert.equal(missing.status, 404);
  assert.ok((await missing.json()).error);
  assert.equal((await fetch(`${srv.host}/ui/assets/${js}`, { method: 'POST' })).status, 405);
});

test('the page loads and lists the models', async () => {
  const r = await page.goto(srv.host);
  assert.equal(r.status(), 200);
  assert.match(r.headers()['content-type'], /^text\/html/);
  await page.locator('select.model option', { hasText: 'qwen3:latest' }).waitFor({ state: 'attached' });
  assert.equal(await page.locator('select.model').inputValue(), 'qwen3:latest');
  await page.locator('.empty h1', { hasText: 'qwen3:latest' }).waitFor();
  assert.ok(await composer().evaluate((el) => el === document.activeElement));
  await shot('empty');
});

test('an answer streams in and can be copied', async () => {
  // A fixed seed makes the random model's answers the same on every run (none ends early).
  await setOption('seed', 42);
  await setOption('num_predict', 300);
  await page.getByRole('button', { name: 'Close options' }).click();
  // Record the answer's length at every DOM change while it streams.
  await page.evaluate(() => {
    window.__lengths = [];
    const conv = document.querySelector('.conversation');
    new MutationObserver(() => {
      const a = [...conv.querySelectorAll('.msg.assistant')].pop();
      if (a) window.__lengths.push(a.textContent.length);
    }).observe(conv, { subtree: true, childList: true, characterData: true });
  });
  await send('Why is the sky blue?');
  await page.locator('.msg.user .bubble', { hasText: 'Why is the sky blue?' }).waitFor();
  await page.locator('button.stop').waitFor();
  await idle();
  const lengths = await page.evaluate(() => window.__lengths);
  const distinct = new Set(lengths.filter((n) => n > 0));
  assert.ok(distinct.size >= 3, `the answer should grow while streaming: ${JSON.stringify(lengths)}`);
  assert.ok(Math.max(...lengths) > 50);
  await lastAnswer().locator('.stats', { hasText: 'tokens' }).waitFor();
  await shot('chat');

  const text = await lastAnswer().locator('.md').first().textContent();
  await lastAnswer().locator('button.copy-msg').click();
  await lastAnswer().locator('button.copy-msg', { hasText: 'Copied' }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.ok(copied.length > 0 && text.includes(copied.trim().slice(0, 10)), 'the answer was copied');
});

test('Stop aborts a long answer', async () => {
  await setOption('num_predict', LONG);
  await send('Tell me a very long story.');
  await answerLonger(100);
  await page.locator('button.stop').click();
  await idle();
  await lastAnswer().locator('.note', { hasText: 'stopped' }).waitFor();
  const n = (await lastAnswer().textContent()).length;
  await page.waitForTimeout(400);
  assert.equal((await lastAnswer().textContent()).length, n, 'nothing arrives after Stop');
});

test('Regenerate replaces the last answer', async () => {
  const before = await answers().count();
  const req = page.waitForRequest((r) => r.url().endsWith('/api/chat'));
  await lastAnswer().locator('button.regenerate').click();
  const body = (await req).postDataJSON();
  assert.deepEqual(body.messages.at(-1), { role: 'user', content: 'Tell me a very long story.' });
  assert.equal(body.options.num_predict, LONG);
  await answerLonger(50);
  await page.keyboard.press('Escape');  // Esc stops too, wherever the focus is
  await idle();
  await lastAnswer().locator('.note', { hasText: 'stopped' }).waitFor();
  assert.equal(await answers().count(), before);
});

test('options: the system prompt and settings go with the request', async () => {
  await setOption('system', 'You are a terse assistant.');
  await setOption('temperature', 0.3);
  await setOption('num_ctx', 1024);
  await setOption('num_predict', 24);
  await page.locator('.model-info dd', { hasText: 'qwen3' }).first().waitFor();  // from /api/show
  await shot('options');
  const req = page.waitForRequest((r) => r.url().endsWith('/api/chat'));
  await send('Hello');
  const body = (await req).postDataJSON();
  await idle();
  assert.deepEqual(body.messages[0], { role: 'system', content: 'You are a terse assistant.' });
  assert.deepEqual(body.options, { temperature: 0.3, num_ctx: 1024, num_predict: 24, seed: 42 });
  assert.equal(body.model, 'qwen3:latest');
  assert.equal(body.stream, true);
  // The stopped answers went back as context; the failed/empty ones would not.
  assert.deepEqual(body.messages.map((m) => m.role),
                   ['system', 'user', 'assistant', 'user', 'assistant', 'user']);
});

test('markdown, code, math, thinking and tool calls render safely', async () => {
  // A fixed answer (the random model cannot write markdown): served in place of /api/chat.
  const md = [
    '# Title\n\nSome **bold** text, a [link](https://example.com/) and [bad](javascript:alert(1)).\n\n',
    '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>\n\n',
    '![a picture](https://example.com/pic.png)\n\n',
    '```python\ndef double(x):\n    return x * 2\n```\n\n',
    'Inline $E = mc^2$ and \\(a^2+b^2=c^2\\), and on its own line:\n\n',
    '$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$\n\nIt costs $5 and $10.\n',
  ];
  const chunks = [
    { message: { role: 'assistant', content: '', thinking: 'Let me think about **this**.' }, done: false },
    ...md.map((content) => ({ message: { role: 'assistant', content }, done: false })),
    { message: { role: 'assistant', content: '',
                 tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      done: false },
    { message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', eval_count: 42,
      eval_duration: 1e9 },
  ];
  await page.route('**/api/chat', (route) => route.fulfill({
    status: 200, contentType: 'application/x-ndjson',
    body: chunks.map((c) => JSON.stringify({ model: 'qwen3:latest', ...c })).join('\n') + '\n',
  }));
  await send('Show me some markdown');
  await idle();
  await page.unroute('**/api/chat');
  const a = lastAnswer();

  const thinking = a.locator('details.thinking');
  assert.equal(await thinking.evaluate((d) => d.open), false, 'thinking starts collapsed');
  assert.equal(await thinking.locator('strong').textContent(), 'this');
  assert.equal(await a.locator('.md h1').textContent(), 'Title');
  assert.equal(await a.locator(':scope > .md strong').textContent(), 'bold');
  const link = a.locator('a[href="https://example.com/"]');
  assert.equal(await link.textContent(), 'link');
  assert.match(await link.getAttribute('rel'), /noopener/);
  assert.equal(await a.locator('a[href^="javascript"]').count(), 0);
  // Raw HTML and images from the model are text, never elements.
  assert.equal(await page.locator('.conversation img, .conversation script').count(), 0);
  assert.match(await a.textContent(), /<img src=x onerror=/);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.equal(await a.locator('a[href="https://example.com/pic.png"]').textContent(), '[image: a picture]');
  // Code: highlighted once highlight.js has loaded, with a working copy button.
  await a.locator('code.language-python .hljs-keyword', { hasText: 'def' }).waitFor();
  await a.locator('.code-block .copy-code').click();
  await a.locator('.code-block .copy-code', { hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'def double(x):\n    return x * 2');
  // Math: KaTeX for $…$, \(…\) and $$…$$; dollar amounts stay text.
  await a.locator('.math-block .katex-display').waitFor();
  assert.equal(await a.locator('.katex').count(), 3);
  assert.match(await a.textContent(), /It costs \$5 and \$10\./);
  assert.equal(await a.locator('.math-pending').count(), 0);
  // Tool calls.
  assert.equal(await a.locator('.tool-call .tool-name').textContent(), 'get_weather');
  assert.match(await a.locator('.tool-call .tool-args').textContent(), /"city":"Paris"/);
  assert.match(await a.locator('.stats').textContent(), /42 tokens · 42\.0 tok\/s/);
  await a.scrollIntoViewIfNeeded();
  await shot('markdown');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('markdown-dark');
  await page.emulateMedia({ colorScheme: 'light' });
});

test('keyboard: / focuses the composer, Shift+Enter adds a line, Ctrl+Shift+O opens a new chat', async () => {
  await page.locator('.brand').click();  // focus away from the composer
  await page.keyboard.press('/');
  assert.ok(await composer().evaluate((el) => el === document.activeElement));
  assert.equal(await composer().inputValue(), '', '"/" is not typed into the box');
  await page.keyboard.type('line one');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('line two');
  assert.equal(await composer().inputValue(), 'line one\nline two');
  await composer().fill('');

  const title = 'Why is the sky blue?';
  await page.keyboard.press('Control+Shift+O');
  await page.locator('.empty').waitFor();
  assert.equal(await page.locator('.msg').count(), 0);
  const entry = page.locator('.chat-list button', { hasText: title });
  await entry.waitFor();
  await entry.click();
  await page.locator('.msg.user .bubble', { hasText: title }).waitFor();
  assert.ok((await answers().count()) >= 4);
});

test('history: a new chat is saved with its question and answer, the URL names it', async () => {
  await page.keyboard.press('Control+Shift+O');
  await page.locator('.empty').waitFor();
  await setOption('num_predict', LONG);
  await send('Tell me about zebras');
  await answerLonger(60);
  await page.locator('button.stop').click();
  await idle();
  await lastAnswer().locator('.note', { hasText: 'stopped' }).waitFor();
  await page.waitForURL(/#\/c\/.+/);
  const id = openChatId();
  const saved = await until(async () => {
    const c = await ui('GET', `/chats/${id}`);
    return c.messages.length === 2 && c;
  }, 'the question and the stopped answer');
  assert.equal(saved.chat.title, 'Tell me about zebras');
  assert.equal(saved.chat.model, 'qwen3:latest');
  assert.deepEqual(saved.chat.options, { num_predict: LONG });
  const [q, a] = saved.messages;
  assert.deepEqual([q.role, q.content, q.parent_id], ['user', 'Tell me about zebras', null]);
  assert.equal(a.role, 'assistant');
  assert.equal(a.parent_id, q.id);
  assert.equal(a.model, 'qwen3:latest');
  assert.equal(a.extra.stopped, true, 'UI-only fields go in extra');
  assert.ok(a.content.length > 0);
  assert.equal(saved.chat.current_leaf, a.id);
  assert.equal(await page.locator('.chat-item.current .chat-title').textContent(), 'Tell me about zebras');
});

test('history: regenerate makes a second version, the switcher goes back to the first', async () => {
  const id = openChatId();
  const first = await lastAnswer().locator('.md').first().textContent();
  assert.equal(await page.locator('.branch').count(), 0, 'no switcher while there is one version');
  // The options change is saved (debounced) before the answer is asked for.
  const patched = page.waitForResponse((r) => r.url().includes(`/ui/api/chats/${id}`) && r.request().method() === 'PATCH');
  await setOption('num_predict', 40);
  await patched;
  await page.getByRole('button', { name: 'Close options' }).click();
  await lastAnswer().locator('button.regenerate').click();
  await idle();
  await lastAnswer().locator('.stats').waitFor();
  assert.equal(await lastAnswer().locator('.branch-count').textContent(), '2/2');
  assert.equal(await answers().count(), 1);
  const c = await until(async () => {
    const c = await ui('GET', `/chats/${id}`);
    return c.messages.length === 3 && c;
  }, 'the second answer');
  assert.equal(c.messages[2].parent_id, c.messages[0].id, 'a sibling of the first answer');
  assert.equal(c.chat.current_leaf, c.messages[2].id);
  assert.deepEqual(c.chat.options, { num_predict: 40 });

  const leaf = page.waitForResponse((r) => r.url().includes(`/ui/api/chats/${id}`) && r.request().method() === 'PATCH');
  await lastAnswer().locator('button.branch-prev').click();
  assert.equal(await lastAnswer().locator('.branch-count').textContent(), '1/2');
  assert.equal(await lastAnswer().locator('.md').first().textContent(), first);
  await lastAnswer().locator('.note', { hasText: 'stopped' }).waitFor();
  assert.ok(await lastAnswer().locator('button.branch-prev').isDisabled());
  await leaf;
  assert.equal((await ui('GET', `/chats/${id}`)).chat.current_leaf, c.messages[1].id);
  await lastAnswer().hover();
  await shot('branches');
  await lastAnswer().locator('button.branch-next').click();
  assert.equal(await lastAnswer().locator('.branch-count').textContent(), '2/2');
});

test('history: editing a question makes a branch with its own answer; Esc cancels an edit', async () => {
  const id = openChatId();
  const question = page.locator('.msg.user').first();
  await question.hover();
  await question.locator('button.edit').click();
  const box = page.getByLabel('Edit message');
  // The box takes the focus and puts the caret at the end itself; fill only once it has.
  const editBoxFocused = () =>
    page.waitForFunction(() => document.activeElement?.getAttribute('aria-label') === 'Edit message');
  await editBoxFocused();
  assert.equal(await box.inputValue(), 'Tell me about zebras');
  await box.fill('this is not sent');
  await box.press('Escape');
  await page.locator('.msg.user .bubble', { hasText: 'Tell me about zebras' }).waitFor();
  assert.equal(await box.count(), 0);
  assert.equal(await page.locator('button.send').count(), 1, 'Esc in the box did not start anything');

  await question.hover();
  await question.locator('button.edit').click();
  await editBoxFocused();
  await box.fill('Tell me about lions');
  const req = page.waitForRequest((r) => r.url().endsWith('/api/chat'));
  await box.press('Enter');
  const body = (await req).postDataJSON();
  assert.deepEqual(body.messages, [{ role: 'user', content: 'Tell me about lions' }]);
  await idle();
  await page.locator('.msg.user .bubble', { hasText: 'Tell me about lions' }).waitFor();
  assert.equal(await page.locator('.msg.user .branch-count').textContent(), '2/2');
  assert.equal(await lastAnswer().locator('.branch').count(), 0, 'the new question has one answer');
  const c = await until(async () => {
    const c = await ui('GET', `/chats/${id}`);
    return c.messages.length === 5 && c;
  }, 'the edited question and its answer');
  const [q1, , , q2, a2] = c.messages;
  assert.deepEqual([q2.role, q2.content, q2.parent_id], ['user', 'Tell me about lions', null]);
  assert.equal(a2.parent_id, q2.id);
  assert.equal(c.chat.current_leaf, a2.id);

  // Back to the first question: its newest answer shows.
  await page.locator('.msg.user button.branch-prev').click();
  await page.locator('.msg.user .bubble', { hasText: 'Tell me about zebras' }).waitFor();
  assert.equal(await page.locator('.msg.user .branch-count').textContent(), '1/2');
  assert.equal(await lastAnswer().locator('.branch-count').textContent(), '2/2');
  await until(async () => (await ui('GET', `/chats/${id}`)).chat.current_leaf === c.messages[2].id,
              'the branch switch saved');
  assert.equal(c.messages[2].parent_id, q1.id);
});

test('history: a reload restores the list, the open chat, its branch, model and options', async () => {
  const id = openChatId();
  // A second model to pick for this chat.
  await srv.create('other', GGUF);
  await page.reload();
  await page.locator('.msg.user .bubble', { hasText: 'Tell me about zebras' }).waitFor();
  assert.equal(openChatId(), id);
  assert.equal(await lastAnswer().locator('.branch-count').textContent(), '2/2');
  assert.equal(await page.locator('.msg.user .branch-count').textContent(), '1/2');
  const titles = await page.locator('.chat-item .chat-title').allTextContents();
  assert.deepEqual(titles, ['Tell me about zebras', 'Why is the sky blue?'], 'newest first');
  assert.equal(await page.locator('.chat-item.current .chat-title').textContent(), 'Tell me about zebras');
  await openOptions();
  assert.equal(await page.locator('.options [name="num_predict"]').inputValue(), '40');
  await page.getByRole('button', { name: 'Close options' }).click();
  await shot('history');

  await page.locator('select.model option', { hasText: 'other:latest' }).waitFor({ state: 'attached' });
  assert.equal(await page.locator('select.model').inputValue(), 'qwen3:latest', "the chat's model");
  const patched = page.waitForResponse((r) => r.url().includes(`/ui/api/chats/${id}`) && r.request().method() === 'PATCH');
  await page.locator('select.model').selectOption('other:latest');
  await patched;
  assert.equal((await ui('GET', `/chats/${id}`)).chat.model, 'other:latest');
  // Another chat shows its own model; coming back shows this one's.
  await page.locator('.chat-list button.open-chat', { hasText: 'Why is the sky blue?' }).click();
  await page.locator('.msg.user .bubble', { hasText: 'Why is the sky blue?' }).waitFor();
  assert.equal(await page.locator('select.model').inputValue(), 'qwen3:latest');
  assert.match(page.url(), /#\/c\/.+/);
  await page.goBack();  // the history of the address follows the chats
  await page.locator('.msg.user .bubble', { hasText: 'Tell me about zebras' }).waitFor();
  assert.equal(await page.locator('select.model').inputValue(), 'other:latest');
  assert.equal(openChatId(), id);
});

test('history: search finds a chat by a word of its messages and shows the snippet safely', async () => {
  // A chat whose text looks like HTML, made through the API.
  const x = await ui('POST', '/chats', { title: 'Markup', model: 'qwen3:latest' });
  await ui('POST', `/chats/${x.id}/messages`,
           { role: 'user', content: 'so <img src=x onerror="window.__xss=3"> giraffes?' });
  const search = page.getByLabel('Search chats');
  await search.fill('lions');
  await page.locator('.chat-list.results').waitFor();
  const hit = page.locator('.chat-item', { hasText: 'Tell me about zebras' });
  await hit.waitFor();
  assert.equal(await page.locator('.chat-item').count(), 1);
  assert.equal(await hit.locator('.snippet mark').first().textContent(), 'lions');
  await shot('history-search');

  await search.fill('giraff');  // terms are prefixes
  const markup = page.locator('.chat-item', { hasText: 'Markup' });
  await markup.waitFor();
  assert.equal(await page.locator('.chat-item').count(), 1);
  assert.equal(await markup.locator('.snippet img').count(), 0);
  assert.match(await markup.locator('.snippet').textContent(), /<img src=x onerror=/);
  assert.equal(await markup.locator('.snippet mark').textContent(), 'giraffes');
  assert.equal(await page.evaluate(() => window.__xss), undefined);

  await search.fill('nothingmatchesthis');
  await page.locator('.chats', { hasText: 'No chat matches.' }).waitFor();
  await search.press('Escape');
  assert.equal(await search.inputValue(), '');
  await page.locator('.chat-item', { hasText: 'Markup' }).waitFor();
  assert.equal(await page.locator('.chat-item').count(), 3);
  assert.equal(await page.locator('.chat-list .snippet').count(), 0);
});

test('history: rename a chat inline (Enter saves, Esc cancels)', async () => {
  const id = openChatId();
  const item = page.locator('.chat-item.current');
  await item.locator('button.rename').click();
  const box = page.getByLabel('Chat title');
  assert.equal(await box.inputValue(), 'Tell me about zebras');
  await box.fill('not this');
  await box.press('Escape');
  assert.equal(await page.locator('.chat-item.current .chat-title').textContent(), 'Tell me about zebras');

  await page.locator('.chat-item.current button.rename').click();
  await box.fill('Zebras and lions');
  await box.press('Enter');
  await page.locator('.chat-item.current .chat-title', { hasText: 'Zebras and lions' }).waitFor();
  await until(async () => (await ui('GET', `/chats/${id}`)).chat.title === 'Zebras and lions', 'the new title');
  assert.equal(await page.title(), 'Zebras and lions · hearth');
});

test('history: the list loads page after page as it scrolls', async () => {
  for (let i = 0; i < 60; i++) await ui('POST', '/chats', { title: `Paged chat ${i}`, model: 'qwen3:latest' });
  await page.reload();
  await page.locator('.chat-item', { hasText: 'Paged chat 59' }).waitFor();
  assert.equal(await page.locator('.chat-item').count(), 50, 'the first page');
  assert.equal(await page.locator('.chat-item', { hasText: 'Zebras and lions' }).count(), 0);
  await page.locator('.chats').evaluate((el) => el.scrollTo(0, el.scrollHeight));
  await page.locator('.chat-item', { hasText: 'Why is the sky blue?' }).waitFor();
  assert.equal(await page.locator('.chat-item').count(), 63);
  assert.equal(await page.locator('.chats .more').count(), 0, 'nothing more to load');
  // Newest first throughout, no chat twice.
  const titles = await page.locator('.chat-item .chat-title').allTextContents();
  assert.equal(new Set(titles).size, 63);
  assert.equal(titles[0], 'Paged chat 59');
  assert.equal(titles[59], 'Paged chat 0');
});

test('history: delete a chat after confirming; it stays gone after a reload', async () => {
  const id = openChatId();
  const item = page.locator('.chat-item.current');
  await item.locator('button.delete').click();
  await page.locator('.chat-item.confirming', { hasText: 'Delete “Zebras and lions”?' }).waitFor();
  await page.locator('.chat-item.confirming button.confirm-cancel').click();
  await page.locator('.chat-item.current .chat-title', { hasText: 'Zebras and lions' }).waitFor();

  await page.locator('.chat-item.current button.delete').click();
  await page.locator('.chat-item.confirming button.confirm-delete').click();
  await page.locator('.empty').waitFor();  // the open chat went: a new one instead
  await until(async () => !(await allChats()).some((c) => c.id === id), 'the chat deleted');
  assert.equal((await fetch(`${srv.host}/ui/api/chats/${id}`)).status, 404);
  assert.equal(new URL(page.url()).hash, '');
  await page.reload();
  await page.locator('.chat-item', { hasText: 'Paged chat 59' }).waitFor();
  await page.locator('.chats').evaluate((el) => el.scrollTo(0, el.scrollHeight));
  await page.locator('.chat-item', { hasText: 'Why is the sky blue?' }).waitFor();
  assert.equal(await page.locator('.chat-item', { hasText: 'Zebras and lions' }).count(), 0);
  assert.equal(await page.locator('.chat-item').count(), 62);
});

test('history: export downloads every chat, importing it adds them again', async () => {
  const before = (await allChats()).length;
  const dl = page.waitForEvent('download');
  await page.locator('.transfer button.export').click();
  const file = await (await dl).path();
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(doc.version, 1);
  assert.equal(doc.chats.length, before);
  const sky = doc.chats.find((c) => c.title === 'Why is the sky blue?');
  assert.ok(sky.messages.length >= 8, 'messages go with their chat');

  await page.locator('.transfer input[type=file]').setInputFiles(file);
  await page.locator('.notice', { hasText: `Imported ${before} chats.` }).waitFor();
  assert.equal((await allChats()).length, 2 * before);
  // The list shows them (imports keep their dates, so search rather than scroll).
  await page.getByLabel('Search chats').fill('sky blue');
  await until(async () => (await page.locator('.chat-item', { hasText: 'Why is the sky blue?' }).count()) === 2,
              'the imported chat listed');
  await page.getByLabel('Search chats').fill('');
});

test('history: without a usable database the chat still works, in the page, and says so', async () => {
  const s2 = await startServer({ HEARTH_UI_DB: '/dev/null/ui.sqlite' });  // cannot be created
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    await s2.create('qwen3', GGUF);
    const p2 = await ctx.newPage();
    const uncaught = [];
    p2.on('pageerror', (e) => uncaught.push(String(e)));
    await p2.goto(s2.host);
    await p2.locator('.chats .error', { hasText: 'HEARTH_UI_DB' }).waitFor();  // the list says why
    await p2.getByRole('button', { name: 'Options' }).click();
    await p2.locator('.options [name="num_predict"]').fill('8');
    await p2.getByLabel('Message').fill('Hello');
    await p2.getByLabel('Message').press('Enter');
    await p2.locator('.notice.error', { hasText: 'Not saved to the history' }).waitFor();
    await p2.locator('button.send').waitFor();
    await p2.locator('.msg.assistant .stats').waitFor();
    // Versions work in memory too.
    await p2.locator('.msg.assistant button.regenerate').click();
    await p2.locator('button.send').waitFor();
    assert.equal(await p2.locator('.msg.assistant .branch-count').textContent(), '2/2');
    await p2.locator('.msg.assistant button.branch-prev').click();
    assert.equal(await p2.locator('.msg.assistant .branch-count').textContent(), '1/2');
    assert.deepEqual(uncaught, []);
  } finally {
    await ctx.close();
    s2.stop();
  }
});

test('no console errors, no request to any other host', async () => {
  assert.deepEqual(consoleErrors, []);
  const foreign = requests.filter((u) => !u.startsWith(srv.host + '/') && !u.startsWith('data:'));
  assert.deepEqual(foreign, []);
  assert.ok(requests.some((u) => u.includes('/ui/assets/katex-')), 'KaTeX was loaded on demand');
});
