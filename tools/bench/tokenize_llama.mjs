#!/usr/bin/env node
// Tokenization throughput of llama.cpp (the oracle's node-llama-cpp build) on a text file:
//   node tools/bench/tokenize_llama.mjs VOCAB.gguf TEXT_FILE [REPS]
// Prints {bytes, tokens, seconds (best of REPS), mb_per_s}, the shape of `hearth tokenize --stats`.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {pathToFileURL} from "node:url";

const home = process.env.HEARTH_ORACLE_HOME || path.join(os.homedir(), ".cache", "hearth-oracle");
const nlc = await import(pathToFileURL(path.join(home, "node_modules", "node-llama-cpp/dist/index.js")).href);
const [modelPath, file, repsArg] = process.argv.slice(2);
const reps = Number(repsArg || 3);
const text = fs.readFileSync(file, "utf8");
const llama = await nlc.getLlama({gpu: false, build: "never", skipDownload: true, progressLogs: false,
                                  logLevel: nlc.LlamaLogLevel.fatal});
const model = await llama.loadModel({modelPath, gpuLayers: 0, vocabOnly: true, useMmap: true});
let best = Infinity, n = 0;
for (let r = 0; r < reps; r++) {
  const t0 = process.hrtime.bigint();
  n = model.tokenize(text, true).length;  // parse_special, as hearth tokenize's default
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
}
const bytes = Buffer.byteLength(text, "utf8");
process.stdout.write(JSON.stringify({bytes, tokens: n, seconds: best, mb_per_s: bytes / 1e6 / best}) + "\n");
await model.dispose();
await llama.dispose();
