// Where chats live: the server's history under /ui/api/ (src/web/history.h), an SQLite database
// of chats whose messages form a tree (an edited question or a regenerated answer is a sibling;
// `current_leaf` names the branch shown).
//
// Chat (the UI's form): { id, title, model, options, nodes, leaf, saved }
//   options: { system, temperature, num_ctx, num_predict, seed, think } (strings; empty: model
//            default); the server keeps `system` apart and the rest as its `options` object.
//   nodes:   { [id]: message }, in insertion order (parents before children)
//   message: { id, parent_id, role, content, thinking?, tool_calls?, tool_name?, model? } plus
//            UI-only fields on answers (stats, stopped, error), kept in the server's `extra`.
//   leaf:    the id of the last message of the branch shown (null: none yet)
//   saved:   whether the chat was sent to the server (a new chat is, with its first message)
//
// Chats and messages made on this page get local ids ("local-…") at once, so nothing waits for
// the server; the store maps them to the server's ids when its answers come. Writes to one chat
// run in order, each after the previous one's answer; a failed write is reported to onError
// subscribers and the chat carries on in memory.
//
// Reads (list, load, exportAll, importAll) reject on failure; writes (create, addMessage,
// update, remove) never do.
import { requestOptions } from './Options.jsx';

export const emptyOptions = () => ({
  system: '', temperature: '', num_ctx: '', num_predict: '', seed: '', think: '', collections: [],
});

let counter = 0;
export const localId = () =>
  'local-' + (crypto.randomUUID?.() ?? `${Date.now()}-${++counter}-${Math.random().toString(16).slice(2)}`);

export function newChat(model = '') {
  return { id: localId(), title: '', model, options: emptyOptions(), nodes: {}, leaf: null, saved: false };
}

// A title from the first question, shortened.
export function titleFrom(text) {
  const t = (text ?? '').replace(/\s+/g, ' ').trim();
  return t.length > 48 ? t.slice(0, 47) + '…' : t || 'New chat';
}

// ---- The tree.

// The messages from the root down to `id`.
export function pathTo(nodes, id) {
  const out = [];
  for (let m = nodes[id]; m; m = m.parent_id ? nodes[m.parent_id] : null) out.push(m);
  return out.reverse();
}

// The newest leaf under (or at) `id`: where switching to that branch lands.
export function newestLeaf(nodes, id) {
  const all = Object.values(nodes);
  const under = new Set([id]);
  let leaf = id;
  // Insertion order puts parents before children, so one pass finds every descendant.
  for (const m of all) {
    if (m.parent_id && under.has(m.parent_id)) under.add(m.id);
  }
  for (const m of all) {
    if (under.has(m.id) && !all.some((c) => c.parent_id === m.id)) leaf = m.id;
  }
  return leaf;
}

// ---- Conversions between the UI's and the server's forms.

// sources: the passages an answer drew on; prompt: the question as the model got it (with them).
const UI_FIELDS = ['stats', 'stopped', 'error', 'sources', 'prompt'];

function serverOptions(o) {
  const out = requestOptions(o);
  if (o.think) out.think = o.think === 'true';
  if (o.collections?.length) out.collections = o.collections;  // the named document collections
  return out;
}

function uiOptions(system, o) {
  const out = emptyOptions();
  out.system = system ?? '';
  for (const k of ['temperature', 'num_ctx', 'num_predict', 'seed'])
    if (typeof o?.[k] === 'number') out[k] = String(o[k]);
  if (typeof o?.think === 'boolean') out.think = String(o.think);
  if (Array.isArray(o?.collections)) out.collections = o.collections.filter((c) => typeof c === 'string');
  return out;
}

function uiMessage(m) {
  const out = { id: m.id, parent_id: m.parent_id, role: m.role, content: m.content ?? '' };
  if (m.thinking) out.thinking = m.thinking;
  if (m.tool_calls?.length) out.tool_calls = m.tool_calls;
  if (m.model) out.model = m.model;
  for (const k of UI_FIELDS) if (m.extra?.[k] !== undefined) out[k] = m.extra[k];
  if (m.extra?.tool_name) out.tool_name = m.extra.tool_name;
  return out;
}

function uiChat({ chat, messages }) {
  const nodes = {};
  for (const m of messages) nodes[m.id] = uiMessage(m);
  let leaf = chat.current_leaf;
  if (!nodes[leaf]) leaf = messages.length ? newestLeaf(nodes, messages[0].id) : null;
  return {
    id: chat.id, title: chat.title, model: chat.model, options: uiOptions(chat.system, chat.options),
    nodes, leaf, saved: true,
  };
}

// ---- The server store.

async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch('/ui/api' + path, init);
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      const j = await r.json();
      if (j?.error) msg = j.error;
    } catch {}
    const e = new Error(msg);
    e.status = r.status;
    throw e;
  }
  return r.status === 204 ? null : r.json();
}

const enc = encodeURIComponent;

export class ServerStore {
  #ids = new Map();     // local id -> the server's id
  #local = new Map();   // and back, for chats: their writes queue under one key
  #queues = new Map();  // chat id -> the promise of its last write
  #removed = new Set(); // chats deleted: an answer that ends after that is not saved
  #subs = new Set();
  #errorSubs = new Set();

  // The server's id for a local one (itself when it has none yet, or is one).
  serverId(id) {
    return this.#ids.get(id) ?? id;
  }

  // { chats: [{ id, title, model, created_at, updated_at, snippet? }], next }: newest first, or
  // with `q` the best matches first.
  list({ q = '', cursor = '', limit = 50 } = {}) {
    const p = new URLSearchParams({ limit: String(limit) });
    if (q) p.set('q', q);
    if (cursor) p.set('cursor', cursor);
    return call('GET', '/chats?' + p);
  }

  // The chat, or null if there is none with that id.
  async load(id) {
    try {
      return uiChat(await call('GET', '/chats/' + enc(this.serverId(id))));
    } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
  }

  // Creates the chat on the server; resolves to its server id.
  create(chat) {
    return this.#write(chat.id, async () => {
      const c = await call('POST', '/chats', {
        title: chat.title, model: chat.model, system: chat.options.system, options: serverOptions(chat.options),
      });
      this.#ids.set(chat.id, c.id);
      this.#local.set(c.id, chat.id);
      return c.id;
    }, true);
  }

  // Adds a finished message (its parent must have been added before); it becomes the current leaf.
  addMessage(chatId, m) {
    return this.#write(chatId, async (cid) => {
      const body = { parent_id: m.parent_id ? this.serverId(m.parent_id) : null, role: m.role, content: m.content ?? '' };
      if (m.thinking) body.thinking = m.thinking;
      if (m.tool_calls?.length) body.tool_calls = m.tool_calls;
      if (m.model) body.model = m.model;
      const extra = {};
      for (const k of UI_FIELDS) if (m[k] !== undefined) extra[k] = m[k];
      if (m.tool_name) extra.tool_name = m.tool_name;
      if (Object.keys(extra).length) body.extra = extra;
      const saved = await call('POST', `/chats/${enc(cid)}/messages`, body);
      this.#ids.set(m.id, saved.id);
      return saved.id;
    });
  }

  // Any of { title, model, options (the UI's, system included), leaf }.
  update(chatId, { title, model, options, leaf }) {
    return this.#write(chatId, async (cid) => {
      const body = {};
      if (title !== undefined) body.title = title;
      if (model !== undefined) body.model = model;
      if (options !== undefined) {
        body.system = options.system;
        body.options = serverOptions(options);
      }
      if (leaf !== undefined) body.current_leaf = leaf && this.serverId(leaf);
      await call('PATCH', '/chats/' + enc(cid), body);
    });
  }

  remove(chatId) {
    const r = this.#write(chatId, (cid) => call('DELETE', '/chats/' + enc(cid)));
    this.#removed.add(this.#local.get(chatId) ?? chatId);
    return r;
  }

  // The whole history as the server's export document.
  exportAll() {
    return call('GET', '/export');
  }

  // Adds the chats of an export document; resolves to how many.
  async importAll(doc) {
    const r = await call('POST', '/import', doc);
    this.#notify();
    return r.imported;
  }

  // fn() after any change to the list (a chat created, renamed, removed, a message added).
  subscribe(fn) {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }
  // fn(error) when a write fails.
  onError(fn) {
    this.#errorSubs.add(fn);
    return () => this.#errorSubs.delete(fn);
  }

  #notify() {
    for (const fn of this.#subs) fn();
  }

  // Runs op(serverChatId) after the chat's earlier writes and notifies. Never rejects: a failure
  // goes to the onError subscribers and resolves to null (the UI carries on with its copy).
  #write(chatId, op, creates = false) {
    chatId = this.#local.get(chatId) ?? chatId;
    const prev = this.#queues.get(chatId) ?? Promise.resolve();
    const removed = this.#removed.has(chatId);
    const next = prev.then(async () => {
      if (removed) return null;
      const cid = this.serverId(chatId);
      // The chat's creation failed (and was reported): its later writes have nowhere to go.
      if (!creates && cid.startsWith('local-')) return null;
      try {
        const r = await op(cid);
        this.#notify();
        return r;
      } catch (e) {
        for (const fn of this.#errorSubs) fn(e);
        return null;
      }
    });
    this.#queues.set(chatId, next);
    return next;
  }
}

export function createStore() {
  return new ServerStore();
}
