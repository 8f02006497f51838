#!/usr/bin/env node
// llama.cpp's side of scripts/bench-embed: node-llama-cpp's embedding context (the oracle's
// prebuilt llama.cpp, as ../shared/oracle/llama-oracle.mjs loads it) embeds each text of a JSON
// array in turn, the model loaded once; prints {"seconds": best wall time of --reps passes over all
// texts, "tokens": per pass}. node-llama-cpp evaluates one sequence per call (no batching across
// inputs), as a llama.cpp embedding context does.
//   node scripts/bench-embed-llama.mjs MODEL.gguf TEXTS.json [--threads N] [--reps N]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {pathToFileURL} from "node:url";

const argv = process.argv.slice(2);
const opt = (k, d) => {
    const i = argv.indexOf("--" + k);
    return i >= 0 ? argv[i + 1] : d;
};
const [modelPath, textsPath] = argv.filter((a, i) => !a.startsWith("--") && !(argv[i - 1] || "").startsWith("--"));
const home = process.env.HEARTH_ORACLE_HOME || path.join(os.homedir(), ".cache", "hearth-oracle");
const nlc = await import(pathToFileURL(path.join(home, "node_modules", "node-llama-cpp", "dist", "index.js")).href);
const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));
const threads = Number(opt("threads", os.cpus().length));
const llama = await nlc.getLlama({gpu: false, build: "never", skipDownload: true, progressLogs: false,
    maxThreads: threads, logLevel: nlc.LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: true});
const ctx = await model.createEmbeddingContext({threads, contextSize: 512, batchSize: 512});
let tokens = 0;
for (const t of texts) tokens += model.tokenize(t).length;
await ctx.getEmbeddingFor(texts[0]);  // warm-up
let best = Infinity;
for (let r = 0; r < Number(opt("reps", 3)); ++r) {
    const t0 = process.hrtime.bigint();
    for (const t of texts) await ctx.getEmbeddingFor(t);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
}
process.stdout.write(JSON.stringify({seconds: best, tokens}) + "\n");
await ctx.dispose();
await model.dispose();
await llama.dispose();
