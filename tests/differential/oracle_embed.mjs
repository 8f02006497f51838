// Embeds many texts with llama.cpp in one process: the oracle's `embed` command (the same
// node-llama-cpp calls: one CPU thread, a fresh 512-token embedding context per text) without a
// Node start and a model load per text, which made the embedding tests spend most of their time
// starting processes.
// usage: node oracle_embed.mjs MODEL.gguf TEXTS.json   ->  {"results":[{"embedding":[...]}, ...]}
import os from "node:os";
import path from "node:path";
import fs from "node:fs";
import { pathToFileURL } from "node:url";

const home = process.env.HEARTH_ORACLE_HOME || path.join(os.homedir(), ".cache", "hearth-oracle");
const [modelPath, textsFile] = process.argv.slice(2);
if (!modelPath || !textsFile) {
  process.stderr.write("usage: oracle_embed.mjs MODEL.gguf TEXTS.json\n");
  process.exit(2);
}
const nlc = await import(pathToFileURL(path.join(home, "node_modules", "node-llama-cpp", "dist", "index.js")).href);
const llama = await nlc.getLlama({
  gpu: false, build: "never", skipDownload: true, progressLogs: false, maxThreads: 1,
  logLevel: nlc.LlamaLogLevel.error,
});
const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true });
const results = [];
for (const text of JSON.parse(fs.readFileSync(textsFile, "utf8"))) {
  const ctx = await model.createEmbeddingContext({ threads: 1, contextSize: 512 });
  const e = await ctx.getEmbeddingFor(String(text));
  results.push({ embedding: Array.from(e.vector) });
  await ctx.dispose();
}
process.stdout.write(JSON.stringify({ results }) + "\n");
await model.dispose();
await llama.dispose();
