// The retrieval-quality set: recall@k of keyword (BM25), vector and hybrid retrieval through a
// real `hearth serve`, over seven books of the King James Bible (Debian's bible-kjv, ~580 KB) with
// an LSA embedding model built from the whole Bible (tools/embed/mklsa.py), and the labelled
// questions of tools/rag/kjv_questions.json. Also reports the ingest throughput.
//
//   node tools/rag/eval_retrieval.mjs [--k 5] [--json] [--check]
//
// --check exits non-zero unless hybrid's recall is at least keyword's and vector's (the ctest
// rag.quality runs it so). Work files (corpus, model) are kept in $HEARTH_EVAL_DIR
// (default build/rag-eval) and reused.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startServer } from '../../tests/e2e/harness.mjs';

const args = process.argv.slice(2);
const K = Number(args[args.indexOf('--k') + 1] || 5) || 5;
const DIR = resolve(process.env.HEARTH_EVAL_DIR ?? 'build/rag-eval');
mkdirSync(DIR, { recursive: true });
const set = JSON.parse(readFileSync(new URL('./kjv_questions.json', import.meta.url)));
const norm = (s) => s.toLowerCase().replace(/\s+/g, ' ');

// The corpus: each book as Markdown (a heading per chapter, a line per verse).
const books = set.books.map(([name, spec]) => {
  const raw = execFileSync('bible', ['-l9999', spec], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const md = `# ${name}\n\n` + raw.replace(/^(\S.*\d)$/gm, '## $1').replace(/^ +(\d+) /gm, '$1 ');
  return { name: `${name}.md`, md };
});
const corpus = norm(books.map((b) => b.md).join('\n'));
for (const [q, phrase] of set.questions)
  if (!corpus.includes(norm(phrase))) throw new Error(`answer phrase not in the corpus: ${phrase} (${q})`);

const kjv = join(DIR, 'kjv.txt');
if (!existsSync(kjv)) writeFileSync(kjv, execFileSync('bible', ['-l9999', 'Gen1:1-Rev22:21'], { maxBuffer: 1 << 26 }));
const gguf = join(DIR, 'kjv-lsa.gguf');
if (!existsSync(gguf))
  execFileSync('/usr/bin/python3', ['tools/embed/mklsa.py', gguf, '--corpus', kjv], { stdio: 'inherit' });

const srv = await startServer(process.env.HEARTH_UI_CHUNK_TOKENS ? { HEARTH_UI_CHUNK_TOKENS: process.env.HEARTH_UI_CHUNK_TOKENS } : {});
try {
  await srv.create('kjv-lsa', gguf);
  const api = (p, init) => fetch(`${srv.host}/ui/api${p}`, init).then(async (r) => {
    const j = r.status === 204 ? {} : await r.json();
    if (!r.ok) throw new Error(`${p}: ${r.status} ${JSON.stringify(j)}`);
    return j;
  });
  const coll = await api('/collections', { method: 'POST', body: JSON.stringify({ name: 'kjv' }) });
  const t0 = performance.now();
  const ids = [];
  for (const b of books) {
    const d = await api(`/documents?collection=${coll.id}&name=${b.name}&embed_model=kjv-lsa`,
                        { method: 'POST', body: b.md });
    ids.push(d.id);
  }
  let docs;
  for (;;) {
    docs = (await api(`/documents?collection=${coll.id}`)).documents;
    if (docs.every((d) => d.status === 'ready' || d.status === 'error')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const secs = (performance.now() - t0) / 1000;
  for (const d of docs) if (d.status !== 'ready') throw new Error(`${d.name}: ${d.error}`);
  const tokens = docs.reduce((s, d) => s + d.tokens, 0);
  const chunks = docs.reduce((s, d) => s + d.chunks, 0);
  const bytes = books.reduce((s, b) => s + Buffer.byteLength(b.md), 0);

  const recall = {};
  const misses = {};
  for (const mode of ['keyword', 'vector', 'hybrid']) {
    let hits = 0;
    misses[mode] = [];
    for (const [q, phrase] of set.questions) {
      const r = await api('/retrieve', { method: 'POST',
        body: JSON.stringify({ query: q, collections: [coll.id], k: K, mode }) });
      if (r.mode !== mode) throw new Error(`asked for ${mode}, ran ${r.mode}`);
      if (r.passages.some((p) => norm(p.text).includes(norm(phrase)))) hits++;
      else misses[mode].push(q);
    }
    recall[mode] = hits / set.questions.length;
  }
  const out = { questions: set.questions.length, k: K, recall, corpus_bytes: bytes, chunks, tokens,
                ingest_seconds: +secs.toFixed(2), ingest_tokens_per_second: Math.round(tokens / secs) };
  if (args.includes('--json')) console.log(JSON.stringify({ ...out, misses }, null, 1));
  else {
    console.log(`${set.questions.length} questions, recall@${K}: ` +
      Object.entries(recall).map(([m, r]) => `${m} ${(100 * r).toFixed(1)}%`).join(', '));
    console.log(`ingest: ${(bytes / 1024).toFixed(0)} KB, ${chunks} chunks, ${tokens} tokens in ` +
      `${secs.toFixed(2)} s (${out.ingest_tokens_per_second} tokens/s)`);
  }
  if (args.includes('--check') &&
      !(recall.hybrid >= recall.keyword && recall.hybrid >= recall.vector)) {
    console.error('hybrid recall is below one of its parts', JSON.stringify(misses));
    process.exitCode = 1;
  }
} finally {
  srv.stop();
}
