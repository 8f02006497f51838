// The slice of hearth's Ollama-compatible API the UI uses, on the page's own origin.

// An Error carrying the server's JSON {error} message (or the HTTP status).
export async function failure(r) {
  let msg = `${r.status} ${r.statusText}`;
  try {
    const j = await r.json();
    if (j && j.error) msg = j.error;
  } catch {}
  return new Error(msg);
}

async function json(path, init) {
  const r = await fetch(path, init);
  if (!r.ok) throw await failure(r);
  return r.json();
}

// [{ name, size, details: { family, parameter_size, quantization_level } }], newest first.
export async function listModels() {
  return (await json('/api/tags')).models ?? [];
}

// { capabilities, details, model_info, ... } of one model.
export function showModel(name) {
  return json('/api/show', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: name }),
  });
}

// POST /api/chat with stream: true; calls onChunk with each NDJSON object as it arrives.
// Resolves when the stream ends; rejects with an AbortError when `signal` aborts.
export function streamChat(body, signal, onChunk) {
  return postStream('/api/chat', body, signal, onChunk);
}

// POST /api/pull with stream: true: onChunk gets {status, digest?, total?, completed?} or {error}.
export function streamPull(body, signal, onChunk) {
  return postStream('/api/pull', body, signal, onChunk);
}

// DELETE /api/delete: answers 200 with no body.
export async function deleteModel(name) {
  const r = await fetch('/api/delete', {
    method: 'DELETE',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: name }),
  });
  if (!r.ok) throw await failure(r);
}

// GET /api/fit: without a name, this machine and every local model's verdict; with one, the
// model's full report (memory breakdown, contexts, other quantizations).
export function fitReport(name) {
  return json(name ? `/api/fit?model=${encodeURIComponent(name)}` : '/api/fit');
}

// POSTs `body` with stream: true and calls onChunk with each NDJSON object of the answer.
async function postStream(path, body, signal, onChunk) {
  const r = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  if (!r.ok) throw await failure(r);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) onChunk(JSON.parse(line));
    }
  }
  if (buf.trim()) onChunk(JSON.parse(buf));
}
