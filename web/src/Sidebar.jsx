// New chat, the saved chats (newest first, a page at a time as the list scrolls), search over
// them, rename and delete per chat, export and import of the whole history, and the keyboard
// shortcuts.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';

const PAGE = 50;
const MAX_PAGE = 200;  // the server's cap on one request

// The server's snippet is HTML-escaped text with the matches in <mark>…</mark>; anything else
// that looks like a tag is escaped again, so only <mark> can ever become an element.
const safeSnippet = (html) => html.replace(/<(?!\/?mark>)/g, '&lt;');

function download(doc, name) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 1)], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function RenameBox({ title, onDone }) {
  const ref = useRef(null);
  const done = useRef(false);
  // Before the first paint, so typing at once replaces the whole title.
  useLayoutEffect(() => {
    ref.current?.focus();
    ref.current?.select();
  }, []);
  // Enter or leaving the box saves, Esc cancels; whichever comes first.
  const finish = (save) => {
    if (done.current) return;
    done.current = true;
    const t = ref.current.value.trim();
    onDone(save && t && t !== title ? t : null);
  };
  return (
    <input ref={ref} class="rename-box" aria-label="Chat title" value={title} maxLength={500}
           onKeyDown={(e) => {
             if (e.key === 'Enter') {
               e.preventDefault();
               finish(true);
             } else if (e.key === 'Escape') {
               e.preventDefault();
               e.stopPropagation();
               finish(false);
             }
           }}
           onBlur={() => finish(true)} />
  );
}

function ChatItem({ c, current, onOpen, onRename, onRemove }) {
  const [mode, setMode] = useState('');  // '', 'rename' or 'confirm'
  const title = c.title || 'New chat';
  if (mode === 'rename') {
    return (
      <li class="chat-item renaming">
        <RenameBox title={title} onDone={(t) => {
          setMode('');
          if (t) onRename(c.id, t);
        }} />
      </li>
    );
  }
  if (mode === 'confirm') {
    return (
      <li class="chat-item confirming" role="group" aria-label="Delete chat">
        <span class="confirm-text small">Delete “{title}”?</span>
        <button type="button" class="confirm-delete" onClick={() => onRemove(c.id)}>Delete</button>
        <button type="button" class="confirm-cancel" onClick={() => setMode('')}>Cancel</button>
      </li>
    );
  }
  return (
    <li class={'chat-item' + (current ? ' current' : '')}>
      <button type="button" class="open-chat" onClick={() => onOpen(c.id)} title={title}
              aria-current={current ? 'page' : undefined}>
        <span class="chat-title">{title}</span>
        {c.snippet && <span class="snippet" dangerouslySetInnerHTML={{ __html: safeSnippet(c.snippet) }} />}
      </button>
      <span class="item-actions">
        <button type="button" class="rename" title="Rename" aria-label="Rename" onClick={() => setMode('rename')}>
          ✎
        </button>
        <button type="button" class="delete" title="Delete" aria-label="Delete" onClick={() => setMode('confirm')}>
          ×
        </button>
      </span>
    </li>
  );
}

export function Sidebar({ store, currentId, open, onNew, onOpen, onRename, onRemove, onNotice }) {
  const [q, setQ] = useState('');
  // What the list shows: the answer for query `q` (pages so far), `next` the following page.
  const [list, setList] = useState({ chats: [], next: null, q: '', loaded: false, error: '' });
  const listRef = useRef(list);
  listRef.current = list;
  const gen = useRef(0);  // each (re)load's number: only the newest one's answer is shown
  const loadingMore = useRef(false);
  const scrollRef = useRef(null);
  const moreRef = useRef(null);
  const fileRef = useRef(null);

  // From the top, as many as are shown now (a refresh keeps the pages already scrolled to).
  const reload = async (query) => {
    const n = ++gen.current;
    const shown = listRef.current.q === query ? listRef.current.chats.length : 0;
    try {
      const r = await store.list({ q: query, limit: Math.min(Math.max(PAGE, shown), MAX_PAGE) });
      if (n === gen.current) setList({ chats: r.chats, next: r.next, q: query, loaded: true, error: '' });
    } catch (e) {
      if (n === gen.current) setList({ chats: [], next: null, q: query, loaded: true, error: e.message });
    }
  };
  const loadMore = async () => {
    const { next, q: query } = listRef.current;
    if (!next || loadingMore.current) return;
    loadingMore.current = true;
    const n = gen.current;
    try {
      const r = await store.list({ q: query, cursor: next, limit: PAGE });
      if (n === gen.current) {
        const have = new Set(listRef.current.chats.map((c) => c.id));
        setList((l) => ({ ...l, chats: [...l.chats, ...r.chats.filter((c) => !have.has(c.id))], next: r.next }));
      }
    } catch (e) {
      onNotice({ text: 'Could not list chats: ' + e.message, error: true });
    } finally {
      loadingMore.current = false;
    }
  };

  // The query, debounced (the first load is at once).
  const qRef = useRef(q);
  qRef.current = q;
  useEffect(() => {
    const t = setTimeout(() => reload(q.trim()), listRef.current.loaded ? 250 : 0);
    return () => clearTimeout(t);
  }, [q]);
  useEffect(() => store.subscribe(() => reload(qRef.current.trim())), []);

  // The next page when the end of the list scrolls into view. A new observer after each page
  // reports at once whether the end is still in view (a page that does not fill the column).
  useEffect(() => {
    const el = moreRef.current;
    if (!el) return;
    const io = new IntersectionObserver((es) => es.some((e) => e.isIntersecting) && loadMore(),
                                        { root: scrollRef.current, rootMargin: '100px' });
    io.observe(el);
    return () => io.disconnect();
  }, [list.next, list.chats.length]);

  const exportAll = async () => {
    try {
      download(await store.exportAll(), `hearth-chats-${new Date().toISOString().slice(0, 10)}.json`);
    } catch (e) {
      onNotice({ text: 'Export failed: ' + e.message, error: true });
    }
  };
  const importFile = async (file) => {
    try {
      const n = await store.importAll(JSON.parse(await file.text()));
      onNotice({ text: `Imported ${n} chat${n === 1 ? '' : 's'}.` });
    } catch (e) {
      onNotice({ text: `Import of ${file.name} failed: ${e.message}`, error: true });
    }
  };

  const searching = list.q !== '';
  return (
    <nav class={'sidebar' + (open ? ' open' : '')} aria-label="Chats">
      <div class="brand">hearth</div>
      <button type="button" class="new-chat" onClick={onNew} title="New chat (Ctrl+Shift+O)">
        + New chat
      </button>
      <input type="search" class="search" aria-label="Search chats" placeholder="Search chats" value={q}
             onInput={(e) => setQ(e.currentTarget.value)}
             onKeyDown={(e) => {
               if (e.key === 'Escape' && q) {
                 e.stopPropagation();
                 setQ('');
               }
             }} />
      <div class="chats" ref={scrollRef}>
        {list.error && <p class="error small" role="alert">{list.error}</p>}
        {list.loaded && !list.error && list.chats.length === 0 && (
          <p class="muted small">{searching ? 'No chat matches.' : 'Your chats appear here.'}</p>
        )}
        <ul class={'chat-list' + (searching ? ' results' : '')}>
          {list.chats.map((c) => (
            <ChatItem key={c.id} c={c} current={c.id === currentId} onOpen={onOpen} onRename={onRename}
                      onRemove={onRemove} />
          ))}
        </ul>
        {list.next && <div class="more muted small" ref={moreRef}>loading…</div>}
      </div>
      <div class="transfer">
        <button type="button" class="export" onClick={exportAll} title="Download every chat as JSON">Export</button>
        <button type="button" class="import" onClick={() => fileRef.current.click()}
                title="Add the chats of an exported JSON file">Import</button>
        <input ref={fileRef} type="file" accept=".json,application/json" hidden aria-label="Import file"
               onChange={(e) => {
                 const f = e.currentTarget.files[0];
                 e.currentTarget.value = '';
                 if (f) importFile(f);
               }} />
      </div>
      <dl class="shortcuts small">
        <dt><kbd>Enter</kbd></dt><dd>send</dd>
        <dt><kbd>Shift</kbd>+<kbd>Enter</kbd></dt><dd>new line</dd>
        <dt><kbd>Esc</kbd></dt><dd>stop</dd>
        <dt><kbd>/</kbd></dt><dd>focus the message box</dd>
        <dt><kbd>Ctrl</kbd>+<kbd>Shift</kbd>+<kbd>O</kbd></dt><dd>new chat</dd>
      </dl>
    </nav>
  );
}
