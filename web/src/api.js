// The slice of hearth's Ollama-compatible API the UI uses, on the page's own origin.

async function failure(r) {
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
export async function streamChat(body, signal, onChunk) {
  const r = await fetch('/api/chat', {
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
