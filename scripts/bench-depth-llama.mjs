#!/usr/bin/env node
// bench-depth-llama.mjs - llama.cpp's pp/tg speed at a context depth (llama-bench's -d), through
// node-llama-cpp from the oracle install, for side-by-side comparison with `hearth bench -d`.
//
//   node scripts/bench-depth-llama.mjs MODEL.gguf [-d 4096,16384] [-p 512] [-n 128] [-t 2] [-r 3]
//                                      [--fa 0|1] [--kv f16|q8_0|q4_0]
//
// Per depth: one context of d + p + n + 64 cells; the depth is filled once with d random tokens
// (batches of 512, not timed), then each round times pp (p random tokens as one batch of p) and tg
// (n tokens generated greedily one at a time), erasing back to the depth after each. No warm-up
// round (a depth fill warms everything); -r 1 is what 2 cores allow at 32k.
// Prints one JSON line per depth: {"model","depth","fa","kv","threads","pp":{tps,mean},"tg":{..}}
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {pathToFileURL} from "node:url";

const ORACLE_HOME = process.env.HEARTH_ORACLE_HOME || path.join(os.homedir(), ".cache", "hearth-oracle");
const entry = path.join(ORACLE_HOME, "node_modules", "node-llama-cpp", "dist", "index.js");
if (!fs.existsSync(entry)) {
    process.stderr.write(`bench-depth: ${entry} not found - run ../shared/oracle/install.sh\n`);
    process.exit(2);
}
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(entry).href);

const args = process.argv.slice(2);
const modelPath = args.find((a, i) => !a.startsWith("-") && (i === 0 || !args[i - 1].startsWith("-")));
if (!modelPath) {
    process.stderr.write("usage: bench-depth-llama.mjs MODEL.gguf [-d 4096,16384] [-p 512] [-n 128] " +
                         "[-t 2] [-r 3] [--fa 0|1] [--kv f16|q8_0|q4_0]\n");
    process.exit(2);
}
const raw = (flag, def) => { const i = args.indexOf(flag); return i >= 0 ? args[i + 1] : def; };
const depths = String(raw("-d", "0")).split(",").map(Number);
const nPrompt = Number(raw("-p", 512)), nGen = Number(raw("-n", 128));
const threads = Number(raw("-t", 2)), reps = Number(raw("-r", 3));
const fa = raw("--fa", "0") === "1";
const kv = String(raw("--kv", "f16")).toUpperCase();

const llama = await getLlama({gpu: false, build: "never", skipDownload: true, maxThreads: threads,
                              logLevel: LlamaLogLevel.error, progressLogs: false});
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: true});
const nVocab = model.tokens?.nTokens ?? 1000;

// deterministic pseudo-random token ids, away from the low (often special/byte) ids
function tokens(n, seed) {
    let x = seed >>> 0;
    const lo = Math.min(300, Math.floor(nVocab / 4)), span = Math.max(1, nVocab - lo - 1);
    return Array.from({length: n}, () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return lo + (x % span); });
}
const mean = a => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);

for (const depth of depths) {
    const ctx = await model.createContext({contextSize: depth + nPrompt + nGen + 64, batchSize: 512,
                                           threads, flashAttention: fa,
                                           experimentalKvCacheKeyType: kv, experimentalKvCacheValueType: kv});
    const seq = ctx.getSequence();
    let t0 = performance.now();
    if (depth > 0) await seq.evaluateWithoutGeneratingNewTokens(tokens(depth, 3));
    const fillSec = (performance.now() - t0) / 1000;
    const result = {model: path.basename(modelPath), depth, fa, kv: kv.toLowerCase(), threads,
                    fill_s: +fillSec.toFixed(1), pp: {tokens: nPrompt, tps: []}, tg: {tokens: nGen, tps: []}};
    for (let r = 0; r < reps; r++) {
        // pp as one batch of nPrompt (llama-bench's n_ubatch 512)
        const ppCtx = seq;
        t0 = performance.now();
        await ppCtx.evaluateWithoutGeneratingNewTokens(tokens(nPrompt, 7 + r));
        const ppSec = (performance.now() - t0) / 1000;
        await seq.eraseContextTokenRanges([{start: depth, end: seq.nextTokenIndex}]);
        t0 = performance.now();
        let produced = 0;
        for await (const _ of seq.evaluate(tokens(1, 99 + r), {temperature: 0})) {
            if (++produced >= nGen) break;
        }
        const tgSec = (performance.now() - t0) / 1000;
        await seq.eraseContextTokenRanges([{start: depth, end: seq.nextTokenIndex}]);
        result.pp.tps.push(+(nPrompt / ppSec).toFixed(2));
        result.tg.tps.push(+(produced / tgSec).toFixed(2));
    }
    result.pp.mean = +mean(result.pp.tps).toFixed(2);
    result.tg.mean = +mean(result.tg.tps).toFixed(2);
    console.log(JSON.stringify(result));
    await ctx.dispose();
}
await model.dispose();
await llama.dispose();
