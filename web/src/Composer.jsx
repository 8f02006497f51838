// The message box: Enter sends, Shift+Enter adds a line; while an answer streams, Stop (or Esc,
// handled by the App for the whole page) aborts it.
import { useEffect, useState } from 'preact/hooks';

export function Composer({ inputRef, busy, disabled, onSend, onStop }) {
  const [text, setText] = useState('');

  // Grows with its content up to the CSS max-height.
  useEffect(() => {
    const ta = inputRef.current;
    if (!ta) return;
    ta.style.height = 'auto';
    ta.style.height = ta.scrollHeight + 'px';
  }, [text]);

  const send = () => {
    if (busy || disabled || !text.trim()) return;
    onSend(text);
    setText('');
  };
  const onKeyDown = (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  };
  return (
    <form class="composer" onSubmit={(e) => { e.preventDefault(); send(); }}>
      <textarea ref={inputRef} rows="1" value={text} aria-label="Message"
                placeholder={disabled ? 'Pick a model first' : 'Message (Enter to send, Shift+Enter for a new line)'}
                onInput={(e) => setText(e.currentTarget.value)} onKeyDown={onKeyDown} />
      {busy ? (
        <button type="button" class="stop" onClick={onStop} title="Stop (Esc)">Stop</button>
      ) : (
        <button type="submit" class="send" disabled={disabled || !text.trim()} title="Send (Enter)">Send</button>
      )}
    </form>
  );
}
