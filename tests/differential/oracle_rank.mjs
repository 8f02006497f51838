#!/usr/bin/env node
// oracle_rank.mjs — llama.cpp's reranking scores (node-llama-cpp's ranking context on the oracle's
// prebuilt llama.cpp, as ../shared/oracle/llama-oracle.mjs loads it), for the rerank tests.
//   node tests/differential/oracle_rank.mjs MODEL.gguf REQUEST.json [--ctx 512] [--threads 1]
// REQUEST.json: {"query": "...", "documents": ["...", ...]}. Prints
//   {"scores": [raw score per document], "probabilities": [...], "lengths": [tokens per pair],
//    "tokens": [[the pair's token ids], ...]}
// node-llama-cpp evaluates each pair in a context with rank pooling (llama_pooling_type 4) and
// returns sigmoid(score) (Qwen3 rerankers: the score itself, already a softmax); "scores" undoes
// the sigmoid to give the raw value llama-server's /rerank answers (exact to ~1e-15 relative for
// |score| < 30). The pair is node-llama-cpp's [BOS] query [EOS] [SEP] document [EOS] with the
// tokens the vocabulary has, which is what llama-server's format_prompt_rerank builds for the
// WordPiece vocabularies tested here; with a rerank template (Qwen3 rerankers), llama-server's
// sequence: the template's text with {query} and {document} replaced, tokenized whole.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {pathToFileURL} from "node:url";

const argv = process.argv.slice(2);
const opt = (k, d) => {
    const i = argv.indexOf("--" + k);
    return i >= 0 ? argv[i + 1] : d;
};
const [modelPath, reqPath] = argv.filter((a, i) => !a.startsWith("--") && !(argv[i - 1] || "").startsWith("--"));
if (!modelPath || !reqPath) {
    process.stderr.write("usage: oracle_rank.mjs MODEL.gguf REQUEST.json [--ctx N] [--threads N]\n");
    process.exit(2);
}
const home = process.env.HEARTH_ORACLE_HOME || path.join(os.homedir(), ".cache", "hearth-oracle");
const nlc = await import(pathToFileURL(path.join(home, "node_modules", "node-llama-cpp", "dist", "index.js")).href);
const req = JSON.parse(fs.readFileSync(reqPath, "utf8"));
const threads = Number(opt("threads", 1));
const llama = await nlc.getLlama({gpu: false, build: "never", skipDownload: true, progressLogs: false,
    maxThreads: threads, logLevel: nlc.LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: true});
const ctxSize = Number(opt("ctx", 512));
const rc = await model.createRankingContext({contextSize: ctxSize, batchSize: ctxSize, threads});
const tok = (t, special = false) => model.tokenize(t, special, "trimLeadingSpace");
const tk = model.fileInfo.metadata?.tokenizer ?? {};
const template = tk["chat_template.rerank"] ?? tk.chat_template?.rerank;
let probabilities, lengths, tokens = null;
if (typeof template === "string") {
    // A rerank template: node-llama-cpp tokenizes its pieces and the texts apart, llama-server the
    // whole text with {query} and {document} replaced (special-token text parsed, nothing added):
    // evaluate llama-server's sequence (an internal of node-llama-cpp 3.x evaluates given tokens).
    tokens = req.documents.map((d) => Array.from(tok(template.replaceAll("{query}", req.query)
        .replaceAll("{document}", d), true)));
    probabilities = [];
    for (const t of tokens) probabilities.push(await rc._evaluateRankingForInput(t));
    lengths = tokens.map((t) => t.length);
} else {
    probabilities = await rc.rankAll(req.query, req.documents);
    lengths = req.documents.map((d) => rc.calculateInputLength(req.query, d));
    try {  // an internal of node-llama-cpp 3.x, for diagnostics only
        tokens = req.documents.map((d) => Array.from(rc._getEvaluationInput(tok(req.query), tok(d))));
    } catch {
        tokens = null;
    }
}
const normalized = ["qwen3", "qwen3vl"].includes(model.fileInfo.metadata?.general?.architecture);
const scores = probabilities.map((p) => (normalized ? p : Math.log(p) - Math.log1p(-p)));
process.stdout.write(JSON.stringify({scores, probabilities, lengths, tokens}) + "\n");
await rc.dispose();
await model.dispose();
await llama.dispose();
