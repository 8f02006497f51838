// The chat's documents: upload (button or drop), ingest progress, delete; named collections the
// chat searches too. Shown as a side panel like the options.
import { useEffect, useRef, useState } from 'preact/hooks';
import './documents.css';
import {
  RERANK, createCollection, deleteDocument, isIndexing, listCollections, listDocuments, uploadDocument,
} from './docs.js';

const size = (n) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(0)} KB` : `${(n / (1 << 20)).toFixed(1)} MB`);

function Progress({ d }) {
  if (d.status === 'ready') {
    return <span class="doc-state muted">{d.chunks} passages{d.embed_model ? '' : ' · keywords only'}</span>;
  }
  if (d.status === 'error') return <span class="doc-state error-text" title={d.error}>failed: {d.error}</span>;
  const label = d.status === 'embedding' ? `indexing ${d.embedded}/${d.chunks}` : d.status === 'queued' ? 'queued' : 'reading';
  return (
    <span class="doc-state">
      <progress max={Math.max(d.chunks, 1)} value={d.status === 'embedding' ? d.embedded : undefined} />
      <span class="muted small">{label}</span>
    </span>
  );
}

// ensureChat(title): resolves to the chat's id on the server (creating the chat, so titled, if it
// is new).
export function DocumentsPanel({ chatId, ensureChat, collections, onCollections, embedModels, rerankModels = [], onClose }) {
  const [docs, setDocs] = useState([]);
  const [all, setAll] = useState([]);  // named collections
  const [error, setError] = useState('');
  const [embedModel, setEmbedModel] = useState(localStorage.getItem('hearth.embed') ?? '');
  const [rerank, setRerank] = useState(localStorage.getItem(RERANK) ?? '');
  const [drag, setDrag] = useState(false);
  const fileRef = useRef(null);

  // `id`: the chat's server id when the props do not have it yet (an upload that created the chat).
  const refresh = (id = chatId) =>
    listDocuments(id, collections).then(setDocs).catch((e) => setError(e.message));
  useEffect(() => {
    refresh();
    listCollections().then(setAll).catch(() => {});
  }, [chatId, collections.join()]);
  // Poll while something is being ingested.
  useEffect(() => {
    if (!docs.some(isIndexing)) return;
    const t = setTimeout(refresh, 400);
    return () => clearTimeout(t);
  }, [docs]);
  useEffect(() => {
    if (!embedModel && embedModels.length) setEmbedModel(embedModels[0]);
  }, [embedModels.join()]);

  const upload = async (files) => {
    setError('');
    let id = chatId;
    try {
      id = await ensureChat(files[0]?.name);
      for (const f of files) await uploadDocument(f, { chatId: id, embedModel });
    } catch (e) {
      setError(e.message);
    }
    refresh(id);
  };
  const remove = async (d) => {
    if (!confirm(`Delete ${d.name}?`)) return;
    await deleteDocument(d.id).catch((e) => setError(e.message));
    refresh();
  };
  const toggle = (id) =>
    onCollections(collections.includes(id) ? collections.filter((c) => c !== id) : [...collections, id]);
  const newCollection = async () => {
    const name = prompt('Name of the new collection');
    if (!name) return;
    try {
      const c = await createCollection(name);
      setAll(await listCollections());
      onCollections([...collections, c.id]);
    } catch (e) {
      setError(e.message);
    }
  };

  return (
    <aside class={'documents' + (drag ? ' drag' : '')} aria-label="Documents"
           onDragOver={(e) => { e.preventDefault(); setDrag(true); }}
           onDragLeave={() => setDrag(false)}
           onDrop={(e) => { e.preventDefault(); setDrag(false); upload([...e.dataTransfer.files]); }}>
      <header class="panel-head">
        <h2>Documents</h2>
        <button type="button" class="icon" aria-label="Close documents" onClick={onClose}>✕</button>
      </header>
      <p class="muted small">Answers in this chat draw on these files: Markdown, text, code, HTML, PDF.</p>
      <label class="field">
        <span>Embedding model</span>
        <select name="embed_model" value={embedModel}
                onChange={(e) => { setEmbedModel(e.currentTarget.value); localStorage.setItem('hearth.embed', e.currentTarget.value); }}>
          <option value="">none (keyword search)</option>
          {embedModels.map((m) => <option key={m} value={m}>{m}</option>)}
        </select>
      </label>
      {rerankModels.length > 0 && (
        <label class="field">
          <span>Rerank passages with</span>
          <select name="rerank_model" value={rerank}
                  onChange={(e) => { setRerank(e.currentTarget.value); localStorage.setItem(RERANK, e.currentTarget.value); }}>
            <option value="">no reranking</option>
            {rerankModels.map((m) => <option key={m} value={m}>{m}</option>)}
          </select>
        </label>
      )}
      <input ref={fileRef} type="file" multiple hidden aria-label="Upload documents"
             accept=".md,.markdown,.txt,.pdf,.html,.htm,.c,.cc,.cpp,.h,.hpp,.py,.js,.ts,.rs,.go,.java,.json,.yaml,.yml,.toml,.sh,text/*,application/pdf"
             onChange={(e) => { upload([...e.currentTarget.files]); e.currentTarget.value = ''; }} />
      <button type="button" class="upload" onClick={() => fileRef.current.click()}>Upload files…</button>
      {error && <div class="error" role="alert">{error}</div>}
      <ul class="doc-list">
        {docs.map((d) => (
          <li key={d.id} class={'doc ' + d.status} data-status={d.status}>
            <div class="doc-line">
              <span class="doc-name" title={d.name}>{d.name}</span>
              <span class="muted small">{size(d.bytes)}</span>
              <button type="button" class="icon small" aria-label={`Delete ${d.name}`} onClick={() => remove(d)}>✕</button>
            </div>
            <Progress d={d} />
          </li>
        ))}
        {!docs.length && <li class="muted small">No documents yet. Drop files here.</li>}
      </ul>
      <h3>Collections</h3>
      <ul class="collections">
        {all.map((c) => (
          <li key={c.id}>
            <label><input type="checkbox" checked={collections.includes(c.id)} onChange={() => toggle(c.id)} />
              {' '}{c.name} <span class="muted small">({c.documents})</span></label>
          </li>
        ))}
      </ul>
      <button type="button" class="link" onClick={newCollection}>New collection…</button>
    </aside>
  );
}

// The passages an answer drew on, numbered as the model was told to cite them.
export function Sources({ sources }) {
  if (!sources?.length) return null;
  return (
    <details class="sources">
      <summary>{sources.length} source{sources.length > 1 ? 's' : ''}: {[...new Set(sources.map((s) => s.document))].join(', ')}</summary>
      <ol>
        {sources.map((s) => (
          <li key={s.n} value={s.n} class="source">
            <div class="source-head"><strong>{s.document}</strong>{s.headings && <span class="muted"> › {s.headings}</span>}</div>
            <blockquote class="passage">{s.text}</blockquote>
          </li>
        ))}
      </ol>
    </details>
  );
}
