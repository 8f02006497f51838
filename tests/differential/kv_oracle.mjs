#!/usr/bin/env node
// kv_oracle.mjs - llama.cpp's logits at every position with a quantized KV cache, for
// test_kv_types.py. ../shared/oracle/llama-oracle.mjs always runs an F16 cache without flash
// attention; llama.cpp needs flash attention for a quantized V cache, so this one turns it on.
//
//   node kv_oracle.mjs MODEL.gguf --tokens 1,2,3 --kv q8_0|q4_0|f16 --out FILE.f32 [--fa 0|1]
//
// Prints {shape:[n_positions, n_vocab]}; FILE.f32 holds the rows as little-endian float32.
// One CPU thread, like the oracle, so repeated runs give identical bits.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {pathToFileURL} from "node:url";

const HOME = process.env.HEARTH_ORACLE_HOME || path.join(os.homedir(), ".cache", "hearth-oracle");
const {getLlama, LlamaLogLevel} = await import(
    pathToFileURL(path.join(HOME, "node_modules", "node-llama-cpp", "dist", "index.js")).href);

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
const modelPath = args[0];
const tokens = String(opt("--tokens", "")).split(",").filter((s) => s !== "").map(Number);
const kv = String(opt("--kv", "f16")).toUpperCase();
const fa = opt("--fa", "1") === "1";
const out = opt("--out");
if (!modelPath || tokens.length === 0 || !out) {
    process.stderr.write("usage: kv_oracle.mjs MODEL --tokens 1,2,3 --kv q8_0 --out FILE.f32\n");
    process.exit(2);
}

const llama = await getLlama({gpu: false, build: "never", skipDownload: true, maxThreads: 1,
                              logLevel: LlamaLogLevel.error, progressLogs: false});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createContext({contextSize: Math.max(256, tokens.length + 8),
                                       batchSize: Math.max(32, tokens.length), threads: 1,
                                       sequences: 1, flashAttention: fa,
                                       experimentalKvCacheKeyType: kv,
                                       experimentalKvCacheValueType: kv});
const seq = ctx.getSequence();
const res = await seq.controlledEvaluate(tokens.map((t) => [t, {generateNext: {logits: true}}]));
const nv = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const buf = Buffer.alloc(tokens.length * nv * 4);
let o = 0;
for (let i = 0; i < tokens.length; i++) {
    const row = new Float32Array(nv).fill(NaN);
    for (const [t, v] of res[i].next.logits) row[t] = v;
    for (const v of row) { buf.writeFloatLE(v, o); o += 4; }
}
fs.writeFileSync(out, buf);
process.stdout.write(JSON.stringify({shape: [tokens.length, nv], kv: kv.toLowerCase(), fa}) + "\n");
await ctx.dispose();
await model.dispose();
await llama.dispose();
