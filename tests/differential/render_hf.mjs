#!/usr/bin/env node
// Renders chat-template cases with @huggingface/jinja (the reference renderer transformers'
// apply_chat_template is checked against), in one process:
//   node render_hf.mjs CASES.json   ->  one JSON line per case: {"text"} or {"error"}
// A case: {template (file path), messages, tools?, vars?, add_generation_prompt?, bos_token?,
// eos_token?}; the context is built as ../shared/oracle/hf-tokenizer.mjs `chat` builds it.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {pathToFileURL} from "node:url";

const home = process.env.HEARTH_ORACLE_HOME || path.join(os.homedir(), ".cache", "hearth-oracle");
const {Template} = await import(pathToFileURL(path.join(home, "node_modules", "@huggingface/jinja/dist/index.js")).href);
const cases = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const compiled = new Map();
const out = [];
for (const c of cases) {
  try {
    let t = compiled.get(c.template);
    if (!t) {
      t = new Template(fs.readFileSync(c.template, "utf8"));
      compiled.set(c.template, t);
    }
    const text = t.render({
      ...(c.vars || {}),
      messages: c.messages,
      ...(c.tools ? {tools: c.tools} : {}),
      add_generation_prompt: c.add_generation_prompt ?? true,
      bos_token: c.bos_token ?? "",
      eos_token: c.eos_token ?? "",
    });
    out.push(JSON.stringify({text}));
  } catch (e) {
    out.push(JSON.stringify({error: String(e?.message || e)}));
  }
}
process.stdout.write(out.join("\n") + "\n");
