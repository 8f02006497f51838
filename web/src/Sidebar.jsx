// New chat, the list of chats (from the store) and the keyboard shortcuts.
export function Sidebar({ chats, currentId, onNew, onOpen, open }) {
  return (
    <nav class={'sidebar' + (open ? ' open' : '')} aria-label="Chats">
      <div class="brand">hearth</div>
      <button type="button" class="new-chat" onClick={onNew} title="New chat (Ctrl+Shift+O)">
        + New chat
      </button>
      <div class="chats">
        {chats.length === 0 && <p class="muted small">Chats of this session appear here.</p>}
        <ul class="chat-list">
          {chats.map((c) => (
            <li key={c.id}>
              <button type="button" class={c.id === currentId ? 'current' : ''} onClick={() => onOpen(c.id)}
                      title={c.title}>
                {c.title || 'New chat'}
              </button>
            </li>
          ))}
        </ul>
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
