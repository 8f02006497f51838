// Documents for a chat: the /ui/api/documents, /collections and /retrieve calls, and how
// retrieved passages go into the prompt.
import { failure } from './api.js';

async function call(path, init) {
  const r = await fetch('/ui/api' + path, init);
  if (!r.ok) throw await failure(r);
  return r.status === 204 ? null : r.json();
}

const scope = (chatId, collections = []) =>
  [chatId && `chat=${encodeURIComponent(chatId)}`,
   ...collections.map((c) => `collection=${encodeURIComponent(c)}`)].filter(Boolean).join('&');

export async function listDocuments(chatId, collections) {
  const q = scope(chatId, collections);
  if (!q) return [];
  return (await call(`/documents?${q}`)).documents;
}

// Uploads one File into the chat's own collection (or a named one); resolves to the document.
export function uploadDocument(file, { chatId, collection, embedModel }) {
  const q = new URLSearchParams({ name: file.name });
  if (collection) q.set('collection', collection);
  else q.set('chat', chatId);
  if (embedModel) q.set('embed_model', embedModel);
  return call(`/documents?${q}`, {
    method: 'POST',
    headers: file.type ? { 'Content-Type': file.type } : {},
    body: file,
  });
}

export const deleteDocument = (id) => call(`/documents/${encodeURIComponent(id)}`, { method: 'DELETE' });
export const listCollections = async () => (await call('/collections')).collections;
export const createCollection = (name) =>
  call('/collections', { method: 'POST', body: JSON.stringify({ name }) });

export function retrieve(body) {
  return call('/retrieve', { method: 'POST', body: JSON.stringify(body) });
}

// localStorage key of the rerank model retrieval uses ("" or absent: none).
export const RERANK = 'hearth.rerank';

export const isIndexing = (d) => d.status === 'queued' || d.status === 'extracting' || d.status === 'embedding';

// Polls until no document in scope is being ingested; onProgress(done, total) as it goes.
export async function waitIndexed(chatId, collections, onProgress, signal) {
  for (;;) {
    const docs = await listDocuments(chatId, collections);
    const busy = docs.filter(isIndexing);
    const total = docs.reduce((s, d) => s + Math.max(d.chunks, 1), 0);
    const done = docs.reduce((s, d) => s + (isIndexing(d) ? d.embedded : Math.max(d.chunks, 1)), 0);
    onProgress?.(done, total, busy.length);
    if (!busy.length) return docs;
    if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
    await new Promise((r) => setTimeout(r, 300));
  }
}

// Tokens left for retrieved passages: the context, less what the conversation already took (the
// last answer's prompt + its answer), the new question and room for the reply.
export function passageBudget({ numCtx, lastPrompt = 0, lastAnswer = 0, question = '', reply = 1024 }) {
  const used = lastPrompt + lastAnswer + Math.ceil(question.length / 3) + reply + 64;
  return Math.max(0, Math.min(3000, numCtx - used));
}

// The user turn the model sees: the numbered passages, then the question. It goes last, after
// the system prompt and the history, so the server's prompt cache keeps everything before it.
export function withSources(question, passages) {
  if (!passages.length) return question;
  const src = passages
    .map((p) => `[${p.n}] ${p.document}\n${p.text.trim()}`)  // the text starts with its headings
    .join('\n\n');
  return 'Use the numbered sources below to answer the question. Cite the sources you use like [1]. ' +
    'If they do not contain the answer, say so.\n\n' +
    `<sources>\n${src}\n</sources>\n\nQuestion: ${question}`;
}
