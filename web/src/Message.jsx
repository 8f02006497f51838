// One message of the conversation: markdown content, the collapsed thinking, tool calls and
// tool results, and its actions (copy, edit a question, regenerate an answer, and the switcher
// between a message's versions: the siblings an edit or a regeneration made).
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { copyText, flash } from './clipboard.js';
import { Sources } from './Documents.jsx';
import { renderMarkdown } from './markdown.js';

function Markdown({ text, renderVersion }) {
  const html = useMemo(() => renderMarkdown(text), [text, renderVersion]);
  return <div class="md" dangerouslySetInnerHTML={{ __html: html }} />;
}

function ToolCalls({ calls }) {
  return (
    <div class="tool-calls">
      {calls.map((c, i) => {
        const f = c.function ?? {};
        const args = typeof f.arguments === 'string' ? f.arguments : JSON.stringify(f.arguments ?? {});
        return (
          <div class="tool-call" key={i}>
            <span class="tool-badge">tool call</span>
            <code class="tool-name">{f.name ?? '?'}</code>
            <code class="tool-args">{args}</code>
          </div>
        );
      })}
    </div>
  );
}

function stats(m) {
  const s = m.stats;
  if (!s) return null;
  const parts = [];
  if (s.eval_count) parts.push(`${s.eval_count} tokens`);
  if (s.eval_count && s.eval_duration) parts.push(`${(s.eval_count / (s.eval_duration / 1e9)).toFixed(1)} tok/s`);
  if (s.done_reason === 'length') parts.push('length limit reached');
  return parts.join(' · ');
}

// A click on a code block's Copy button (the buttons are in the rendered markdown's HTML).
function onMarkdownClick(e) {
  const b = e.target.closest?.('button.copy-code');
  if (!b) return;
  const code = b.closest('.code-block')?.querySelector('code');
  if (code) copyText(code.textContent).then((ok) => flash(b, ok));
}

// A message's copy button: flashes whether the copy worked.
function CopyButton({ text, title }) {
  return (
    <button type="button" class="copy-msg" title={title}
            onClick={(e) => {
              const b = e.currentTarget;
              copyText(text).then((ok) => flash(b, ok));
            }}>
      Copy
    </button>
  );
}

// `‹ 2/3 ›`: which of the message's versions is shown; the arrows show the previous / next one.
function BranchSwitcher({ branch, disabled }) {
  const { index, count, onSwitch } = branch;
  return (
    <span class="branch" role="group" aria-label="Versions">
      <button type="button" class="branch-prev" aria-label="Previous version" title="Previous version"
              disabled={disabled || index === 0} onClick={() => onSwitch(index - 1)}>‹</button>
      <span class="branch-count">{index + 1}/{count}</span>
      <button type="button" class="branch-next" aria-label="Next version" title="Next version"
              disabled={disabled || index === count - 1} onClick={() => onSwitch(index + 1)}>›</button>
    </span>
  );
}

// Editing a question: Enter sends the new version (a sibling, answered anew), Shift+Enter adds a
// line, Esc cancels.
function EditBox({ text, onSave, onCancel }) {
  const [value, setValue] = useState(text);
  const ref = useRef(null);
  // Before the first paint: a caret placed later would land in text the user (or a test) has
  // already started replacing.
  useLayoutEffect(() => {
    const ta = ref.current;
    ta.focus();
    ta.setSelectionRange(ta.value.length, ta.value.length);
  }, []);
  useEffect(() => {
    const ta = ref.current;
    ta.style.height = 'auto';
    ta.style.height = ta.scrollHeight + 'px';
  }, [value]);
  const save = () => value.trim() && onSave(value);
  return (
    <div class="edit-box">
      <textarea ref={ref} value={value} aria-label="Edit message" onInput={(e) => setValue(e.currentTarget.value)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
                    e.preventDefault();
                    save();
                  } else if (e.key === 'Escape') {
                    e.preventDefault();
                    e.stopPropagation();
                    onCancel();
                  }
                }} />
      <div class="edit-actions">
        <button type="button" class="edit-cancel" onClick={onCancel}>Cancel</button>
        <button type="button" class="edit-save" disabled={!value.trim()} onClick={save}>Send</button>
      </div>
    </div>
  );
}

function UserMessage({ m, busy, branch, onEdit }) {
  const [editing, setEditing] = useState(false);
  if (editing) {
    return (
      <div class="msg user editing">
        <EditBox text={m.content} onCancel={() => setEditing(false)} onSave={(t) => {
          setEditing(false);
          onEdit(t);
        }} />
      </div>
    );
  }
  return (
    <div class="msg user">
      <div class="bubble">{m.content}</div>
      <div class="actions">
        {branch && <BranchSwitcher branch={branch} disabled={busy} />}
        <CopyButton text={m.content} title="Copy message" />
        <button type="button" class="edit" title="Edit (answers again in a new branch)" disabled={busy}
                onClick={() => setEditing(true)}>
          Edit
        </button>
      </div>
    </div>
  );
}

// sources: the passages the answer's question was asked with (shown under the answer).
export function Message({ m, streaming, busy, branch, renderVersion, sources, onRegenerate, onEdit }) {
  if (m.role === 'tool') {
    return (
      <div class="msg tool">
        <details class="tool-result">
          <summary>
            <span class="tool-badge">tool result</span>
            {m.tool_name && <code class="tool-name">{m.tool_name}</code>}
          </summary>
          <pre>{m.content}</pre>
        </details>
      </div>
    );
  }
  if (m.role === 'user') return <UserMessage m={m} busy={busy} branch={branch} onEdit={onEdit} />;
  const thinkingNow = streaming && m.thinking && !m.content && !m.tool_calls?.length;
  const info = stats(m);
  return (
    <div class={'msg assistant' + (streaming ? ' streaming' : '')} onClick={onMarkdownClick}>
      {m.thinking && (
        <details class="thinking">
          <summary>{thinkingNow ? 'Thinking…' : 'Thinking'}</summary>
          <Markdown text={m.thinking} renderVersion={renderVersion} />
        </details>
      )}
      {m.content && <Markdown text={m.content} renderVersion={renderVersion} />}
      {m.tool_calls?.length > 0 && <ToolCalls calls={m.tool_calls} />}
      {streaming && !m.content && !m.thinking && <div class="pending" aria-label="waiting">…</div>}
      <Sources sources={sources} />
      {m.error && <div class="error" role="alert">{m.error}</div>}
      {!streaming && (
        <div class="actions">
          {branch && <BranchSwitcher branch={branch} disabled={busy} />}
          <CopyButton text={m.content} title="Copy answer (markdown)" />
          {!busy && (
            <button type="button" class="regenerate" title="Regenerate (a new version of this answer)"
                    onClick={onRegenerate}>
              Regenerate
            </button>
          )}
          {m.stopped && <span class="note">stopped</span>}
          {info && <span class="note stats">{info}</span>}
        </div>
      )}
    </div>
  );
}
