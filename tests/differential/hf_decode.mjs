#!/usr/bin/env node
// hf_decode.mjs — batch decode with the Hugging Face reference tokenizer (@lenml/tokenizers from
// the oracle's node_modules, as ../shared/oracle/hf-tokenizer.mjs loads it; that script decodes one
// id list per process). Prints {results:[{text}]} for a JSON array of id arrays.
//   node tests/differential/hf_decode.mjs TOKENIZER_DIR IDS.json [--skip-special]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {pathToFileURL} from "node:url";

const [dir, idsFile, flag] = process.argv.slice(2);
const home = process.env.HEARTH_ORACLE_HOME || path.join(os.homedir(), ".cache", "hearth-oracle");
const {TokenizerLoader} = await import(
    pathToFileURL(path.join(home, "node_modules", "@lenml", "tokenizers", "dist", "main.mjs")).href);
const read = (f) => JSON.parse(fs.readFileSync(f, "utf8"));
const cfgPath = path.join(dir, "tokenizer_config.json");
const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: read(path.join(dir, "tokenizer.json")),
    tokenizerConfig: fs.existsSync(cfgPath) ? read(cfgPath) : {},
});
const skip = flag === "--skip-special";
const results = read(idsFile).map((ids) => ({text: tok.decode(ids, {skip_special_tokens: skip})}));
process.stdout.write(JSON.stringify({results}) + "\n");
