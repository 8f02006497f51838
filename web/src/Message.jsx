// One message of the conversation: markdown content, the collapsed thinking, tool calls and
// tool results, and its actions (copy, regenerate).
import { useMemo } from 'preact/hooks';
import { copyText, flash } from './clipboard.js';
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

export function Message({ m, streaming, last, renderVersion, onRegenerate }) {
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
  if (m.role === 'user') {
    return (
      <div class="msg user">
        <div class="bubble">{m.content}</div>
        <div class="actions">
          <CopyButton text={m.content} title="Copy message" />
        </div>
      </div>
    );
  }
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
      {m.error && <div class="error" role="alert">{m.error}</div>}
      {!streaming && (
        <div class="actions">
          <CopyButton text={m.content} title="Copy answer (markdown)" />
          {last && (
            <button type="button" class="regenerate" title="Regenerate the answer" onClick={onRegenerate}>
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
