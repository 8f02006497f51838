#!/usr/bin/env node
// llama.cpp's time to the first token from a model file on disk (scripts/bench-startup runs it
// beside hearth): load the model, make a context, evaluate a short prompt, sample one token.
// Prints one JSON line with the seconds from the start of this script (after node itself has
// started) to the first token, and the model-load part of it.
//   node tools/bench/startup-llama.mjs MODEL.gguf [-t 2]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {pathToFileURL} from "node:url";

const t0 = performance.now();
const home = process.env.HEARTH_ORACLE_HOME || path.join(os.homedir(), ".cache", "hearth-oracle");
const entry = path.join(home, "node_modules", "node-llama-cpp", "dist", "index.js");
if (!fs.existsSync(entry)) {
  process.stderr.write(`startup-llama: ${entry} not found - run ../shared/oracle/install.sh\n`);
  process.exit(2);
}
const args = process.argv.slice(2);
const model = args.find((a, i) => !a.startsWith("-") && (i === 0 || !args[i - 1].startsWith("-")));
const ti = args.indexOf("-t");
const threads = ti >= 0 ? Number(args[ti + 1]) : os.cpus().length;
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(entry).href);
const llama = await getLlama({gpu: false, build: "never", skipDownload: true, maxThreads: threads,
                              logLevel: LlamaLogLevel.error, progressLogs: false});
const t1 = performance.now();
const m = await llama.loadModel({modelPath: model, gpuLayers: 0, useMmap: true});
const ctx = await m.createContext({contextSize: 4096, threads});
const t2 = performance.now();
const seq = ctx.getSequence();
const prompt = m.tokenize("Hello, how are you?");
for await (const _ of seq.evaluate(prompt, {temperature: 0})) break;  // the first token
const t3 = performance.now();
console.log(JSON.stringify({library_s: (t1 - t0) / 1000, load_s: (t2 - t1) / 1000,
                            first_token_s: (t3 - t0) / 1000}));
await ctx.dispose();
await m.dispose();
await llama.dispose();
