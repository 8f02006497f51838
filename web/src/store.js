// Where chats live. The UI talks to a store only through this interface, so the history module
// (a server-side store under /ui/api/) can replace MemoryStore without touching the components:
//
//   list(): Promise<Array<{ id, title, model, updated }>>   newest first
//   load(id): Promise<Chat | null>
//   save(chat): Promise<void>       after each finished (or stopped) answer, never per token
//   remove(id): Promise<void>
//   subscribe(fn): () => void       fn() after any change; returns the unsubscribe function
//
// Chat: { id, title, model, options, messages, created, updated }
//   options: { system, temperature, num_ctx, num_predict, seed, think } (empty: model default)
//   messages: Ollama chat messages { role, content, thinking?, tool_calls?, tool_name? } plus
//             UI-only fields on answers: stats, stopped, error.

export const emptyOptions = () => ({
  system: '', temperature: '', num_ctx: '', num_predict: '', seed: '', think: '',
});

export function newChat(model = '') {
  const now = Date.now();
  return {
    id: (crypto.randomUUID?.() ?? String(now) + Math.random().toString(16).slice(2)),
    title: '',
    model,
    options: emptyOptions(),
    messages: [],
    created: now,
    updated: now,
  };
}

// The chat's title: its first question, shortened.
export function titleOf(chat) {
  const first = chat.messages.find((m) => m.role === 'user');
  const t = (first?.content ?? '').replace(/\s+/g, ' ').trim();
  return t.length > 48 ? t.slice(0, 47) + '…' : t || 'New chat';
}

// Chats kept for the life of the page (until the history module lands).
export class MemoryStore {
  #chats = new Map();
  #subs = new Set();

  async list() {
    return [...this.#chats.values()]
      .sort((a, b) => b.updated - a.updated)
      .map(({ id, title, model, updated }) => ({ id, title, model, updated }));
  }
  async load(id) {
    const c = this.#chats.get(id);
    return c ? structuredClone(c) : null;
  }
  async save(chat) {
    this.#chats.set(chat.id, structuredClone({ ...chat, title: titleOf(chat) }));
    this.#notify();
  }
  async remove(id) {
    this.#chats.delete(id);
    this.#notify();
  }
  subscribe(fn) {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }
  #notify() {
    for (const fn of this.#subs) fn();
  }
}

export function createStore() {
  return new MemoryStore();
}
