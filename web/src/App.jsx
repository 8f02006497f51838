// The chat screen: sidebar, header (model picker, options), conversation, composer. Answers
// stream from POST /api/chat; chats are kept in the server's history (store.js), the open one
// named by the URL (#/c/<id>).
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { listModels, showModel, streamChat } from './api.js';
import { Composer } from './Composer.jsx';
import { DocumentsPanel, Sources } from './Documents.jsx';
import { RERANK, listDocuments, passageBudget, retrieve, waitIndexed, withSources } from './docs.js';
import { onLoaded } from './lazy.js';
import { Message } from './Message.jsx';
import { ModelsPage, useHashView } from './Models.jsx';
import { OptionsPanel, requestOptions } from './Options.jsx';
import { Sidebar } from './Sidebar.jsx';
import { createStore, localId, newChat, newestLeaf, pathTo, titleFrom } from './store.js';

const store = createStore();
const LAST_MODEL = 'hearth.model';
const OPTIONS_SAVE_DELAY = 400;  // ms: options typed in the panel are saved once typing pauses

const editable = (el) =>
  el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));

// The chat named by the URL, if any.
function hashChat() {
  const m = location.hash.match(/^#\/c\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}
function setHash(id, push) {
  const url = id ? '#/c/' + encodeURIComponent(id) : location.pathname + location.search;
  if (url === location.hash || (!id && !location.hash)) return;
  history[push ? 'pushState' : 'replaceState'](null, '', url);
}

// What the API gets of a branch: no UI-only fields, no empty failed answers.
function apiMessages(chat, messages) {
  const out = [];
  if (chat.options.system.trim()) out.push({ role: 'system', content: chat.options.system });
  for (const m of messages) {
    if (m.role === 'assistant' && !m.content && !m.tool_calls?.length) continue;
    // A question asked with documents goes as the model got it (passages included), so the
    // conversation's prefix stays what the server has cached.
    const a = { role: m.role, content: (m.role === 'user' && m.prompt) || (m.content ?? '') };
    if (m.tool_calls?.length) a.tool_calls = m.tool_calls;
    if (m.tool_name) a.tool_name = m.tool_name;
    out.push(a);
  }
  return out;
}

// Adds (or replaces) message `m` and makes it the leaf shown.
const withMessage = (chat, m) => ({ ...chat, nodes: { ...chat.nodes, [m.id]: m }, leaf: m.id });

export function App() {
  // The current chat lives in a ref as well, so stream callbacks always extend the latest one.
  const chatRef = useRef(null);
  chatRef.current ??= newChat(localStorage.getItem(LAST_MODEL) ?? '');
  const [chat, setChatState] = useState(chatRef.current);
  const updateChat = (fn) => {
    chatRef.current = typeof fn === 'function' ? fn(chatRef.current) : fn;
    setChatState(chatRef.current);
    return chatRef.current;
  };

  const [models, setModels] = useState(null);  // null while loading
  const [modelsError, setModelsError] = useState('');
  const [info, setInfo] = useState({});  // model name -> /api/show answer
  const [busy, setBusy] = useState(false);
  const [showOptions, setShowOptions] = useState(false);
  const [showDocs, setShowDocs] = useState(false);
  const [embedModels, setEmbedModels] = useState([]);  // local models that can embed
  const [embedOnly, setEmbedOnly] = useState(new Set());  // ... and cannot chat
  const [rerankModels, setRerankModels] = useState([]);  // local rerank models
  const [indexing, setIndexing] = useState(null);  // { done, total } while a question waits
  const [sidebarOpen, setSidebarOpen] = useState(false);
  const [renderVersion, setRenderVersion] = useState(0);
  const [notice, setNotice] = useState(null);  // { text, error }
  const abortRef = useRef(null);
  const inputRef = useRef(null);
  const scrollRef = useRef(null);
  const stickRef = useRef(true);  // follow the answer while the view is at the bottom
  const pendingOptions = useRef(null);  // { id, options, timer }: not saved yet
  const openGen = useRef(0);  // the newest open()'s number: an older load that ends later loses
  const view = useHashView();  // #/models: the Models page

  useEffect(() => onLoaded(() => setRenderVersion((v) => v + 1)), []);
  useEffect(() => store.onError((e) => setNotice({ text: 'Not saved to the history: ' + e.message, error: true })), []);
  useEffect(() => {
    listModels()
      .then((ms) => {
        setModels(ms);
        // Which models embed (for documents) and which only embed (not offered for chat): their
        // capabilities, asked once each.
        Promise.all(ms.map((m) => showModel(m.name).then((i) => i.capabilities ?? [], () => null)))
          .then((caps) => {
            setEmbedModels(ms.filter((m, i) => caps[i]?.includes('embedding')).map((m) => m.name));
            setRerankModels(ms.filter((m, i) => caps[i]?.includes('rerank')).map((m) => m.name));
            const only = new Set(ms.filter((m, i) => caps[i] && !caps[i].includes('completion')).map((m) => m.name));
            setEmbedOnly(only);
            const c = chatRef.current;
            const chatty = ms.find((m) => !only.has(m.name));
            if (!c.saved && only.has(c.model) && chatty) updateChat((ch) => (ch.id === c.id ? { ...ch, model: chatty.name } : ch));
          });
        const c = chatRef.current;
        if (!c.saved && ms.length && !ms.some((m) => m.name === c.model)) {
          updateChat((ch) => (ch.id === c.id ? { ...ch, model: ms[0].name } : ch));
        }
      })
      .catch((e) => setModelsError(e.message));
    inputRef.current?.focus();
  }, [view]);
  useEffect(() => {
    const name = chat.model;
    if (!name || info[name]) return;
    showModel(name)
      .then((i) => setInfo((x) => ({ ...x, [name]: i })))
      .catch(() => {});
  }, [chat.model]);
  useEffect(() => {
    document.title = chat.title ? `${chat.title} · hearth` : 'hearth';
  }, [chat.title]);

  // The branch shown, and each message's siblings (its versions).
  const path = useMemo(() => pathTo(chat.nodes, chat.leaf), [chat.nodes, chat.leaf]);
  const siblings = useMemo(() => {
    const by = new Map();
    for (const m of Object.values(chat.nodes)) {
      const k = m.parent_id ?? null;
      if (!by.has(k)) by.set(k, []);
      by.get(k).push(m.id);
    }
    return by;
  }, [chat.nodes]);

  useEffect(() => {
    const el = scrollRef.current;
    if (el && stickRef.current) el.scrollTop = el.scrollHeight;
  }, [path, renderVersion]);

  const stop = () => abortRef.current?.abort();

  const flushOptions = () => {
    const p = pendingOptions.current;
    if (!p) return;
    clearTimeout(p.timer);
    pendingOptions.current = null;
    store.update(p.id, { options: p.options });
  };

  // Streams an answer to the branch ending at `parentId` (the user's turn) into the chat, and
  // saves it once it ends (finished, stopped or failed).
  const run = async (parentId) => {
    const c = chatRef.current;
    const controller = new AbortController();
    abortRef.current = controller;
    const answer = { id: localId(), parent_id: parentId, role: 'assistant', content: '', thinking: '', model: c.model };
    const show = () => updateChat((ch) => (ch.id === c.id ? withMessage(ch, { ...answer }) : ch));
    show();
    setBusy(true);
    stickRef.current = true;
    // Re-render at most once per frame, however fast tokens come.
    let queued = false;
    const schedule = () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => {
        queued = false;
        if (abortRef.current === controller) show();
      });
    };
    const body = {
      model: c.model, messages: apiMessages(c, pathTo(c.nodes, parentId)), options: requestOptions(c.options),
    };
    if (c.options.think) body.think = c.options.think === 'true';
    try {
      await streamChat(body, controller.signal, (j) => {
        if (j.error) answer.error = j.error;
        const m = j.message ?? {};
        if (m.content) answer.content += m.content;
        if (m.thinking) answer.thinking += m.thinking;
        if (m.tool_calls?.length) answer.tool_calls = [...(answer.tool_calls ?? []), ...m.tool_calls];
        if (j.done) {
          const { eval_count, eval_duration, prompt_eval_count, total_duration, done_reason } = j;
          answer.stats = { eval_count, eval_duration, prompt_eval_count, total_duration, done_reason };
        }
        schedule();
      });
    } catch (e) {
      if (e.name === 'AbortError') answer.stopped = true;
      else answer.error = e.message;
    }
    if (!answer.thinking) delete answer.thinking;
    // The user may have left this chat meanwhile (new chat, another chat): it is saved anyway.
    if (chatRef.current.id === c.id) updateChat((ch) => withMessage(ch, answer));
    if (abortRef.current === controller) {
      abortRef.current = null;
      setBusy(false);
    }
    await store.addMessage(c.id, answer);
  };

  // A question under `parentId` (null: a first one), saved at once, then its answer. A new chat
  // is created on the server with its first question.
  const ask = async (parentId, text) => {
    flushOptions();
    const user = { id: localId(), parent_id: parentId, role: 'user', content: text };
    let c = updateChat((ch) => withMessage(ch, user));
    if (!c.saved) {
      c = updateChat((ch) => ({ ...ch, saved: true, title: titleFrom(text) }));
      createChat(c);
    }
    // Documents: the question waits until they are indexed, then goes with the passages that
    // answer it best (within what the context has left). Busy from here: nothing else is sent.
    setBusy(true);
    if ((await attachSources(c, user, text)) === null) return;  // stopped while waiting
    store.addMessage(c.id, user);
    run(user.id);
  };
  const docScope = (c) => {
    const sid = c.saved ? store.serverId(c.id) : null;
    return { chat: sid && !sid.startsWith('local-') ? sid : null, collections: c.options.collections ?? [] };
  };
  // Adds `sources` and `prompt` to the question when the chat has documents; null if stopped.
  const attachSources = async (c, user, text) => {
    const scope = docScope(c);
    if (!scope.chat && !scope.collections.length) return user;
    let docs;
    try {
      docs = await listDocuments(scope.chat, scope.collections);
    } catch {
      return user;  // no document store: ask without
    }
    if (!docs.some((d) => d.status !== 'error')) return user;
    const controller = new AbortController();
    abortRef.current = controller;
    try {
      await waitIndexed(scope.chat, scope.collections, (done, total, waiting) =>
        setIndexing(waiting ? { done, total } : null), controller.signal);
      const last = pathTo(c.nodes, user.parent_id).filter((m) => m.role === 'assistant').pop();
      const numCtx = Number(c.options.num_ctx) || 4096;  // else the server's default context
      const budget = passageBudget({
        numCtx, lastPrompt: last?.stats?.prompt_eval_count ?? 0, lastAnswer: last?.stats?.eval_count ?? 0,
        question: text, reply: Number(c.options.num_predict) > 0 ? Number(c.options.num_predict) : 1024,
      });
      const rerank = localStorage.getItem(RERANK) || undefined;  // the Documents panel's choice
      const r = await retrieve({ query: text, chat: scope.chat ?? undefined, collections: scope.collections,
                                 k: 5, budget, model: c.model, rerank_model: rerank });
      if (r.passages.length) {
        user.sources = r.passages;
        user.prompt = withSources(text, r.passages);
        updateChat((ch) => (ch.id === c.id ? withMessage(ch, { ...user }) : ch));
      }
    } catch (e) {
      if (e.name === 'AbortError') {
        setIndexing(null);
        setBusy(false);
        abortRef.current = null;
        store.addMessage(c.id, user);  // the question stays, unanswered
        return null;
      }
      setNotice({ text: 'Documents not searched: ' + e.message, error: true });
    }
    setIndexing(null);
    if (abortRef.current === controller) abortRef.current = null;
    return user;
  };
  const send = (text) => ask(chatRef.current.leaf, text);
  // Creates the chat on the server; the promise is kept so an upload can wait for the id.
  const creating = useRef(null);  // { id, promise }
  const createChat = (c) => {
    const promise = store.create(c).then((sid) => {
      if (sid && chatRef.current.id === c.id) {
        setHash(sid, false);
        updateChat((ch) => ({ ...ch }));  // the sidebar marks it by its server id
      }
      return sid;
    });
    creating.current = { id: c.id, promise };
    return promise;
  };
  // The chat's id on the server, creating the chat first if it is new (an upload before the
  // first question).
  const ensureChat = async (title) => {
    let c = chatRef.current;
    if (!c.saved) {
      c = updateChat((ch) => ({ ...ch, saved: true, title: ch.title || title || 'New chat' }));
      return createChat(c);
    }
    const sid = store.serverId(c.id);
    if (!sid.startsWith('local-')) return sid;
    if (creating.current?.id === c.id) return creating.current.promise;
    throw new Error('the chat is not saved on the server');
  };

  // Shows the version `id` of a message: the branch down to its newest leaf.
  const switchTo = (id) => {
    const c = chatRef.current;
    const leaf = newestLeaf(c.nodes, id);
    updateChat((ch) => ({ ...ch, leaf }));
    if (c.saved) store.update(c.id, { leaf });
  };

  const startNew = (push = true) => {
    stop();
    flushOptions();
    openGen.current++;
    updateChat(newChat(chatRef.current.model));
    setHash(null, push);
    setSidebarOpen(false);
    inputRef.current?.focus();
  };
  const open = async (id, push = true) => {
    setSidebarOpen(false);
    if (chatRef.current.saved && store.serverId(chatRef.current.id) === id) return;
    stop();
    flushOptions();
    const n = ++openGen.current;
    let c;
    try {
      c = await store.load(id);
    } catch (e) {
      if (n === openGen.current) setNotice({ text: 'Could not open the chat: ' + e.message, error: true });
      return;
    }
    if (n !== openGen.current) return;
    if (!c) {
      setNotice({ text: 'That chat does not exist (any more).', error: true });
      startNew(false);
      return;
    }
    stickRef.current = true;
    updateChat(c);
    setHash(c.id, push);
  };
  const rename = (id, title) => {
    if (chatRef.current.saved && store.serverId(chatRef.current.id) === id) updateChat((c) => ({ ...c, title }));
    store.update(id, { title });
  };
  const remove = (id) => {
    if (chatRef.current.saved && store.serverId(chatRef.current.id) === id) startNew(false);
    store.remove(id);
  };
  const pickModel = (name) => {
    localStorage.setItem(LAST_MODEL, name);
    const c = updateChat((ch) => ({ ...ch, model: name }));
    if (c.saved) store.update(c.id, { model: name });
  };
  const setOptions = (options) => {
    const c = updateChat((ch) => ({ ...ch, options }));
    if (!c.saved) return;  // a new chat's options go with its creation
    if (pendingOptions.current && pendingOptions.current.id !== c.id) flushOptions();
    clearTimeout(pendingOptions.current?.timer);
    pendingOptions.current = { id: c.id, options, timer: setTimeout(flushOptions, OPTIONS_SAVE_DELAY) };
  };

  // The chat named by the URL: at load, and when the address or history moves.
  useEffect(() => {
    const follow = () => {
      if (location.hash.startsWith('#/models')) return;  // the Models page; the chat stays
      const id = hashChat();
      if (id) open(id, false);
      else if (chatRef.current.saved) startNew(false);
    };
    if (hashChat()) follow();
    // popstate comes for back/forward and for a hash typed into the address bar alike.
    window.addEventListener('popstate', follow);
    return () => window.removeEventListener('popstate', follow);
  }, []);
  useEffect(() => {
    const save = () => flushOptions();
    window.addEventListener('pagehide', save);
    return () => window.removeEventListener('pagehide', save);
  }, []);

  // Page-wide shortcuts; the handlers read refs, so registering once is enough.
  const keys = useRef();
  keys.current = { startNew };
  useEffect(() => {
    const onKey = (e) => {
      if ((e.ctrlKey || e.metaKey) && e.shiftKey && e.code === 'KeyO') {
        e.preventDefault();
        keys.current.startNew();
      } else if (e.key === 'Escape' && abortRef.current) {
        e.preventDefault();
        abortRef.current.abort();
      } else if (e.key === '/' && !e.ctrlKey && !e.metaKey && !e.altKey && !editable(e.target)) {
        e.preventDefault();
        inputRef.current?.focus();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  if (view === 'models')
    return <ModelsPage backHref={chat.saved && !String(chat.id).startsWith('local-') ? '#/c/' + encodeURIComponent(chat.id) : '#/'} />;
  const noModels = models !== null && models.length === 0;
  return (
    <div class={'layout' + (showOptions ? ' with-options' : showDocs ? ' with-docs' : '')}>
      <Sidebar store={store} currentId={chat.saved ? store.serverId(chat.id) : null} open={sidebarOpen}
               onNew={() => startNew()} onOpen={(id) => open(id)} onRename={rename} onRemove={remove}
               onNotice={setNotice} />
      <main class="main">
        <header class="top">
          <button type="button" class="icon menu" aria-label="Chats" title="Chats"
                  onClick={() => setSidebarOpen((v) => !v)}>☰</button>
          <select class="model" aria-label="Model" value={chat.model} disabled={busy || !models?.length}
                  onChange={(e) => pickModel(e.currentTarget.value)}>
            {models === null && <option value="">loading models…</option>}
            {noModels && <option value="">no models</option>}
            {(models ?? []).filter((m) => !embedOnly.has(m.name) || m.name === chat.model).map((m) => (
              <option key={m.name} value={m.name}>{m.name}</option>
            ))}
          </select>
          <span class="spacer" />
          <a class="nav-link" href="#/models">Models</a>
          <button type="button" class={'toggle-docs' + (showDocs ? ' active' : '')} aria-expanded={showDocs}
                  onClick={() => { setShowDocs((v) => !v); setShowOptions(false); }}>
            Documents
          </button>
          <button type="button" class={'toggle-options' + (showOptions ? ' active' : '')}
                  aria-expanded={showOptions} onClick={() => { setShowOptions((v) => !v); setShowDocs(false); }}>
            Options
          </button>
        </header>
        <div class="scroll" ref={scrollRef} onScroll={(e) => {
          const el = e.currentTarget;
          stickRef.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
        }}>
          <div class="conversation" aria-live="polite">
            {modelsError && <div class="error" role="alert">Could not list models: {modelsError}</div>}
            {notice && (
              <div class={'notice' + (notice.error ? ' error' : '')} role={notice.error ? 'alert' : 'status'}>
                <span>{notice.text}</span>
                <button type="button" class="icon dismiss" aria-label="Dismiss" onClick={() => setNotice(null)}>×</button>
              </div>
            )}
            {noModels && (
              <div class="empty">
                <h1>No models yet</h1>
                <p>Pull one on the <a href="#/models">Models</a> page, or from a terminal: <code>hearth pull qwen3</code>.</p>
              </div>
            )}
            {!noModels && path.length === 0 && (
              <div class="empty">
                <h1>{chat.model || 'hearth'}</h1>
                <p class="muted">Ask anything. Answers stream from this machine.</p>
              </div>
            )}
            {path.map((m, i) => {
              const sib = siblings.get(m.parent_id ?? null) ?? [m.id];
              const branch = sib.length > 1 && {
                index: sib.indexOf(m.id), count: sib.length, onSwitch: (k) => switchTo(sib[k]),
              };
              return (
                <Message key={m.id} m={m} renderVersion={renderVersion} busy={busy} branch={branch}
                         sources={m.role === 'assistant' ? chat.nodes[m.parent_id]?.sources : undefined}
                         streaming={busy && i === path.length - 1 && m.role === 'assistant'}
                         onRegenerate={() => m.parent_id && run(m.parent_id)} onEdit={(text) => ask(m.parent_id, text)} />
              );
            })}
            {indexing && (
              <div class="indexing" role="status">
                <progress max={indexing.total} value={indexing.done} /> Indexing documents… the question
                waits ({indexing.done}/{indexing.total})
              </div>
            )}
          </div>
        </div>
        <Composer inputRef={inputRef} busy={busy} disabled={!chat.model} onSend={send} onStop={stop} />
      </main>
      {showDocs && (
        <DocumentsPanel chatId={docScope(chat).chat} ensureChat={ensureChat}
                        collections={chat.options.collections ?? []} embedModels={embedModels}
                        rerankModels={rerankModels}
                        onCollections={(cs) => setOptions({ ...chatRef.current.options, collections: cs })}
                        onClose={() => setShowDocs(false)} />
      )}
      {showOptions && (
        <OptionsPanel options={chat.options} info={info[chat.model]} onClose={() => setShowOptions(false)}
                      onChange={setOptions} />
      )}
    </div>
  );
}
