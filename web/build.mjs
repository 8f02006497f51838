// Bundles web/src into a directory of static files (default web/dist; CMake passes one under the
// build tree): index.html plus content-hashed app-*.js, app-*.css, lazy chunks and KaTeX fonts.
// Hashed names let the server mark them immutable; index.html is the only unhashed file.
//
//   node build.mjs [--outdir DIR] [--dev] [--analyze]
//   (--dev: no minification, with source maps; --analyze: what each output is made of)
import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const outdir = resolve(value('--outdir', join(here, 'dist')));
const dev = flag('--dev');

// KaTeX's stylesheet lists each font as woff2, woff and ttf; every browser the UI targets reads
// woff2, so the other two are dropped and never embedded in the binary.
const woff2Only = {
  name: 'katex-woff2-only',
  setup(build) {
    build.onLoad({ filter: /katex(\.min)?\.css$/ }, (a) => ({
      contents: readFileSync(a.path, 'utf8').replace(
        /,\s*url\([^)]*\.(woff|ttf)\)\s*format\("(woff|truetype)"\)/g, ''),
      loader: 'css',
    }));
  },
};

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.jsx' },
  bundle: true,
  splitting: true,  // KaTeX is a lazy chunk, loaded on the first formula
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: !dev,
  sourcemap: dev,
  legalComments: 'none',
  outdir,
  publicPath: '/ui/assets/',
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  loader: { '.woff2': 'file' },
  plugins: [woff2Only],
  metafile: true,
  logLevel: 'warning',
});

// The entry's script and stylesheet, whatever their hashes, and the chunks it imports statically
// (preloaded, so the browser fetches them alongside the entry instead of after parsing it).
let js, css, preload = [];
for (const [file, out] of Object.entries(result.metafile.outputs)) {
  if (out.entryPoint !== 'src/main.jsx') continue;
  js = basename(file);
  css = out.cssBundle && basename(out.cssBundle);
  preload = out.imports.filter((i) => i.kind === 'import-statement').map((i) => basename(i.path));
}
if (!js || !css) throw new Error('build.mjs: entry outputs not found in the metafile');

const html = readFileSync(join(here, 'src/index.html'), 'utf8')
  .replaceAll('%APP_JS%', `/ui/assets/${js}`)
  .replaceAll('%APP_CSS%', `/ui/assets/${css}`)
  .replace('%PRELOAD%', preload.map((f) => `<link rel="modulepreload" href="/ui/assets/${f}">`).join('\n'));
writeFileSync(join(outdir, 'index.html'), html);

if (flag('--analyze')) console.log(await esbuild.analyzeMetafile(result.metafile));
else if (!flag('--quiet')) {
  for (const [file, out] of Object.entries(result.metafile.outputs))
    if (!file.endsWith('.map')) console.log(`${basename(file).padEnd(40)} ${out.bytes} B`);
}
