// The renderers that most answers never need (KaTeX, highlight.js) load on first use, as their
// own chunks; until then formulas and code show as plain text. Views that rendered with a
// placeholder subscribe here and render again once a module arrives.
const waiting = new Set();

export function onLoaded(fn) {
  waiting.add(fn);
  return () => waiting.delete(fn);
}

// Returns a getter for the module's value: null until `importer()` has resolved, which starts
// on the getter's first call.
export function lazy(importer) {
  let value = null;
  let started = false;
  return () => {
    if (!started) {
      started = true;
      importer().then((v) => {
        value = v;
        for (const fn of waiting) fn();
      });
    }
    return value;
  };
}
