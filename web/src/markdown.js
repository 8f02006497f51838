// Markdown (marked) to HTML for messages. Model output is untrusted, so nothing in it reaches the
// page as markup except what these renderers build: raw HTML is shown as text, links keep only
// http(s)/mailto targets, and images become links (a model's answer never makes the browser
// fetch anything). Code is highlighted; $…$, $$…$$, \(…\) and \[…\] are typeset with KaTeX.
import { Marked } from 'marked';
import { highlight } from './highlight.js';
import { renderMath } from './math.js';

export const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) =>
    ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function safeUrl(href) {
  try {
    const u = new URL(href, location.origin);
    return ['http:', 'https:', 'mailto:'].includes(u.protocol) ? u.href : null;
  } catch {
    return null;
  }
}

function link(url, title, inner) {
  const t = title ? ` title="${escapeHtml(title)}"` : '';
  return `<a href="${escapeHtml(url)}"${t} target="_blank" rel="noopener noreferrer nofollow">${inner}</a>`;
}

// Display math on lines of its own: $$…$$ or \[…\] (may span lines).
const mathBlock = {
  name: 'mathBlock',
  level: 'block',
  start(src) {
    return src.match(/^ {0,3}(?:\$\$|\\\[)/m)?.index;
  },
  tokenizer(src) {
    const m = /^ {0,3}(?:\$\$([\s\S]+?)\$\$|\\\[([\s\S]+?)\\\])[ \t]*(?:\n+|$)/.exec(src);
    if (m) return { type: 'mathBlock', raw: m[0], text: (m[1] ?? m[2]).trim() };
  },
  renderer(t) {
    return `<div class="math-block">${renderMath(t.text, true)}</div>\n`;
  },
};

// Math inside a paragraph. A single $ needs no space inside its delimiters and no digit after
// the closing one, so prices ("$5 and $10") stay text.
const inlineRules = [
  [/^\$\$(?!\$)([\s\S]+?)\$\$/, true],
  [/^\\\[([\s\S]+?)\\\]/, true],
  [/^\\\(([\s\S]+?)\\\)/, false],
  [/^\$(?![\s$])((?:\\[^\n]|[^\\$\n])+?)(?<!\s)\$(?!\d)/, false],
];
const mathInline = {
  name: 'mathInline',
  level: 'inline',
  start(src) {
    return src.match(/\\\(|\\\[|(?<!\\)\$/)?.index;
  },
  tokenizer(src) {
    for (const [re, display] of inlineRules) {
      const m = re.exec(src);
      if (m) return { type: 'mathInline', raw: m[0], text: m[1].trim(), display };
    }
  },
  renderer(t) {
    return renderMath(t.text, t.display);
  },
};

const renderer = {
  html({ text }) {
    return escapeHtml(text);
  },
  link({ href, title, tokens }) {
    const inner = this.parser.parseInline(tokens);
    const url = safeUrl(href);
    return url ? link(url, title, inner) : inner;
  },
  image({ href, title, text }) {
    const url = safeUrl(href);
    const label = escapeHtml(text || href);
    return url ? link(url, title, `[image: ${label}]`) : label;
  },
  code({ text, lang }) {
    const language = (lang ?? '').match(/^\S*/)[0].toLowerCase();
    if (language === 'math' || language === 'latex' || language === 'tex')
      return `<div class="math-block">${renderMath(text, true)}</div>\n`;
    const body = highlight(text, language) ?? escapeHtml(text);
    const cls = language ? ` language-${escapeHtml(language)}` : '';
    return (
      `<div class="code-block"><div class="code-head"><span>${escapeHtml(language || 'text')}</span>` +
      `<button type="button" class="copy-code" title="Copy code">Copy</button></div>` +
      `<pre><code class="hljs${cls}">${body}</code></pre></div>\n`
    );
  },
};

const md = new Marked({ gfm: true, breaks: false, renderer, extensions: [mathBlock, mathInline] });

export function renderMarkdown(src) {
  return md.parse(src ?? '');
}
