// Formulas with KaTeX (a lazy chunk: it is the largest part of the UI's script).
import { lazy } from './lazy.js';

const katex = lazy(() => import('katex').then((m) => m.default));

const escapeHtml = (s) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

// HTML for one formula. Model output is untrusted: KaTeX's `trust` stays off (no \href,
// \includegraphics, \htmlClass ...), and bad TeX renders as an error span instead of throwing.
export function renderMath(tex, display) {
  const k = katex();
  if (!k) {
    const tag = display ? 'div' : 'span';
    return `<${tag} class="math-pending">${escapeHtml(tex)}</${tag}>`;
  }
  return k.renderToString(tex, {
    displayMode: display,
    output: 'html',
    throwOnError: false,
    strict: 'ignore',
    trust: false,
    maxSize: 50,
    maxExpand: 200,
  });
}
