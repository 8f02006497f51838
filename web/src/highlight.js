// Code highlighting with highlight.js, loaded on the first code block.
import { lazy } from './lazy.js';

const hljs = lazy(() => import('./hljs-languages.js').then((m) => m.default));

// Highlighted HTML for `code` in `lang`; null when the language is unknown or not loaded yet.
export function highlight(code, lang) {
  if (!lang) return null;
  const h = hljs();
  if (!h || !h.getLanguage(lang)) return null;
  return h.highlight(code, { language: lang, ignoreIllegals: true }).value;
}
