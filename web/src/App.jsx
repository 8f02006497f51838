// The chat screen: sidebar, header (model picker, options), conversation, composer. Answers
// stream from POST /api/chat; chats are kept by the store (store.js).
import { useEffect, useRef, useState } from 'preact/hooks';
import { listModels, showModel, streamChat } from './api.js';
import { Composer } from './Composer.jsx';
import { onLoaded } from './lazy.js';
import { Message } from './Message.jsx';
import { ModelsPage, useHashView } from './Models.jsx';
import { OptionsPanel, requestOptions } from './Options.jsx';
import { Sidebar } from './Sidebar.jsx';
import { createStore, newChat, titleOf } from './store.js';

const store = createStore();
const LAST_MODEL = 'hearth.model';

const editable = (el) =>
  el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));

// What the API gets of a message: no UI-only fields, no empty failed answers.
function apiMessages(chat, messages) {
  const out = [];
  if (chat.options.system.trim()) out.push({ role: 'system', content: chat.options.system });
  for (const m of messages) {
    if (m.role === 'assistant' && !m.content && !m.tool_calls?.length) continue;
    const a = { role: m.role, content: m.content ?? '' };
    if (m.tool_calls?.length) a.tool_calls = m.tool_calls;
    if (m.tool_name) a.tool_name = m.tool_name;
    out.push(a);
  }
  return out;
}

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
  const [chats, setChats] = useState([]);
  const [busy, setBusy] = useState(false);
  const [showOptions, setShowOptions] = useState(false);
  const [sidebarOpen, setSidebarOpen] = useState(false);
  const [renderVersion, setRenderVersion] = useState(0);
  const abortRef = useRef(null);
  const inputRef = useRef(null);
  const scrollRef = useRef(null);
  const stickRef = useRef(true);  // follow the answer while the view is at the bottom
  const view = useHashView();  // #/models: the Models page

  useEffect(() => onLoaded(() => setRenderVersion((v) => v + 1)), []);
  useEffect(() => {
    const refresh = () => store.list().then(setChats);
    refresh();
    return store.subscribe(refresh);
  }, []);
  useEffect(() => {
    listModels()
      .then((ms) => {
        setModels(ms);
        const cur = chatRef.current.model;
        if (ms.length && !ms.some((m) => m.name === cur)) updateChat((c) => ({ ...c, model: ms[0].name }));
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
  useEffect(() => {
    const el = scrollRef.current;
    if (el && stickRef.current) el.scrollTop = el.scrollHeight;
  }, [chat.messages, renderVersion]);

  const stop = () => abortRef.current?.abort();

  // Streams an answer to `messages` (which end with the user's turn) into the chat.
  const run = async (messages) => {
    const c = chatRef.current;
    const controller = new AbortController();
    abortRef.current = controller;
    const answer = { role: 'assistant', content: '', thinking: '' };
    const show = () => updateChat((ch) => (ch.id === c.id ? { ...ch, messages: [...messages, { ...answer }] } : ch));
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
    const body = { model: c.model, messages: apiMessages(c, messages), options: requestOptions(c.options) };
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
    const here = chatRef.current.id === c.id;
    const done = { ...(here ? chatRef.current : c), messages: [...messages, answer], updated: Date.now() };
    done.title = titleOf(done);
    if (here) updateChat(done);
    if (abortRef.current === controller) {
      abortRef.current = null;
      setBusy(false);
    }
    await store.save(done);
  };

  const send = (text) => run([...chatRef.current.messages, { role: 'user', content: text }]);
  const regenerate = () => {
    const ms = chatRef.current.messages;
    let i = ms.length;
    while (i > 0 && ms[i - 1].role !== 'user') i--;
    if (i > 0) run(ms.slice(0, i));
  };
  const startNew = () => {
    stop();
    updateChat(newChat(chatRef.current.model));
    setSidebarOpen(false);
    inputRef.current?.focus();
  };
  const open = async (id) => {
    stop();
    const c = await store.load(id);
    if (c) updateChat(c);
    setSidebarOpen(false);
  };
  const pickModel = (name) => {
    localStorage.setItem(LAST_MODEL, name);
    updateChat((c) => ({ ...c, model: name }));
  };

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

  if (view === 'models') return <ModelsPage />;
  const lastAssistant = chat.messages.findLastIndex((m) => m.role === 'assistant');
  const noModels = models !== null && models.length === 0;
  return (
    <div class={'layout' + (showOptions ? ' with-options' : '')}>
      <Sidebar chats={chats} currentId={chat.id} onNew={startNew} onOpen={open} open={sidebarOpen} />
      <main class="main">
        <header class="top">
          <button type="button" class="icon menu" aria-label="Chats" title="Chats"
                  onClick={() => setSidebarOpen((v) => !v)}>☰</button>
          <select class="model" aria-label="Model" value={chat.model} disabled={busy || !models?.length}
                  onChange={(e) => pickModel(e.currentTarget.value)}>
            {models === null && <option value="">loading models…</option>}
            {noModels && <option value="">no models</option>}
            {(models ?? []).map((m) => (
              <option key={m.name} value={m.name}>{m.name}</option>
            ))}
          </select>
          <span class="spacer" />
          <a class="nav-link" href="#/models">Models</a>
          <button type="button" class={'toggle-options' + (showOptions ? ' active' : '')}
                  aria-expanded={showOptions} onClick={() => setShowOptions((v) => !v)}>
            Options
          </button>
        </header>
        <div class="scroll" ref={scrollRef} onScroll={(e) => {
          const el = e.currentTarget;
          stickRef.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
        }}>
          <div class="conversation" aria-live="polite">
            {modelsError && <div class="error" role="alert">Could not list models: {modelsError}</div>}
            {noModels && (
              <div class="empty">
                <h1>No models yet</h1>
                <p>Pull one on the <a href="#/models">Models</a> page, or from a terminal: <code>hearth pull qwen3</code>.</p>
              </div>
            )}
            {!noModels && chat.messages.length === 0 && (
              <div class="empty">
                <h1>{chat.model || 'hearth'}</h1>
                <p class="muted">Ask anything. Answers stream from this machine.</p>
              </div>
            )}
            {chat.messages.map((m, i) => (
              <Message key={i} m={m} renderVersion={renderVersion}
                       streaming={busy && i === chat.messages.length - 1 && m.role === 'assistant'}
                       last={!busy && i === lastAssistant && i === chat.messages.length - 1}
                       onRegenerate={regenerate} />
            ))}
          </div>
        </div>
        <Composer inputRef={inputRef} busy={busy} disabled={!chat.model} onSend={send} onStop={stop} />
      </main>
      {showOptions && (
        <OptionsPanel options={chat.options} info={info[chat.model]} onClose={() => setShowOptions(false)}
                      onChange={(o) => updateChat((c) => ({ ...c, options: o }))} />
      )}
    </div>
  );
}
