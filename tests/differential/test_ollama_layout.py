"""Files in Ollama's library layout load and behave exactly like their llama.cpp-layout originals.

For each family (gemma3, gemma4, qwen35, qwen35moe, llama4, Llama 3; F16 plus two quantized
files) the fixture is rewritten into the layout Ollama's legacy converter wrote
(tests/tools/ollama_layout.py: keys dropped, renamed and arrayed, general.* cut, KVs sorted,
random vision/audio/MTP tensors and <arch>.vision.* keys embedded, tokenizer metadata as Ollama
wrote it; weights byte-identical). Then, against the original:
  * hearth reports the layout fixes it applied on the Ollama file and none on the original;
  * logits at every prompt position are bit-identical (tolerance 0: same weights, same
    hyperparameters after normalisation, same kernels);
  * the greedy continuation is identical;
  * the tokenizer gives the same ids for a set of strings (with and without special-token
    parsing) and every end-of-generation id of the original is one of the Ollama file's.
The tokenizer checks also run on vocabularies where Ollama's metadata differs most: a Gemma 4
BPE vocabulary (labelled 'llama' by Ollama), a Llama 4 file (pre-tokenizer 'default') and the
full Llama 3.1 vocabulary (no pre-tokenizer name, EOS <|end_of_text|>).
The number of tensors hearth reports ignoring must be the number the rewrite added, and
`hearth quantize` of an Ollama-layout file (qwen35, gemma3) must give the same Q8_0 model as
quantizing the original (bit-identical logits). Finally,
with the normalisation switched off (HEARTH_OLLAMA_COMPAT=0), every file must fail to load or
differ somewhere (the checks above can fail) — except the llama4 weights file, whose only
Ollama-specific parts are the embedded tower (ignored either way) and a chunk size equal to the
default; its tokenizer difference is covered by the Llama 4 vocabulary."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from harness import FIXTURES, HEARTH, Checker, load_ref

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import gguf_io as G  # noqa: E402
import ollama_layout  # noqa: E402

MODELS = ["gemma3-F16", "gemma4-F16", "qwen35-F16", "qwen35moe-F16", "llama4-F16", "llama-F16",
          "gemma3-Q4_K_M", "qwen35moe-Q8_0"]
TEXTS = ["Hello world", "The quick brown fox jumps over the lazy dog.", "  leading spaces",
         "camelCaseWords and HTTPServer", "numbers 12345 and 3.14159", "line one\nline two\r\n",
         "<start_of_turn>user\nhi<end_of_turn>", "<|start_header_id|>user<|end_header_id|>",
         "<|im_start|>assistant", "<image_soft_token> after", "<|channel>thought<channel|>",
         "émigré café naïve", "日本語のテキスト", "emoji 👍🏽 ok", ""]
N_GREEDY = 16
# Files whose Ollama layout changes nothing hearth would compute even without the fixes.
SAME_WITHOUT_FIXES = {"llama4-F16"}


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    return p.returncode, p.stdout, p.stderr


def env_off():
    e = dict(os.environ)
    e["HEARTH_OLLAMA_COMPAT"] = "0"
    return e


def logits(model, tokens, env=None):
    """(rows, info) or (None, stderr) when hearth refuses the file."""
    fd, out = tempfile.mkstemp(suffix=".f32")
    os.close(fd)
    try:
        rc, so, se = run([HEARTH, "logits", "-m", model, "--tokens", ",".join(map(str, tokens)),
                          "--out", out, "--all-positions"], env)
        if rc != 0:
            return None, se.strip()
        j = json.loads(so.strip().splitlines()[-1])
        return np.fromfile(out, dtype="<f4").reshape(j["shape"]), j
    finally:
        os.unlink(out)


def greedy(model, tokens, env=None):
    rc, so, se = run([HEARTH, "greedy", "-m", model, "--tokens", ",".join(map(str, tokens)),
                      "--n", str(N_GREEDY)], env)
    return json.loads(so.strip().splitlines()[-1])["tokens"] if rc == 0 else None


def tokenize(model, texts_file, special=True, env=None):
    cmd = [HEARTH, "tokenize", "-m", model, "--texts-file", texts_file]
    if not special:
        cmd.append("--no-special")
    rc, so, se = run(cmd, env)
    if rc != 0:
        return None
    j = json.loads(so)
    return {"ids": [r["tokens"] for r in j["results"]], "eog": sorted(j["eog"]),
            "bos": j["bos_added"]}


def compare_tokenizers(c, label, orig, oll, texts_file):
    """Same ids both ways; the original's end-of-generation ids are all the Ollama file's."""
    for special in (True, False):
        a, b = tokenize(orig, texts_file, special), tokenize(oll, texts_file, special)
        mode = "" if special else " --no-special"
        c.check(a is not None and b is not None, f"{label}{mode}: tokenize failed")
        if a is None or b is None:
            continue
        same = sum(x == y for x, y in zip(a["ids"], b["ids"]))
        for text, x, y in zip(TEXTS, a["ids"], b["ids"]):
            c.check(x == y, f"{label}{mode}: {text!r}: original {x[:12]} != Ollama layout {y[:12]}")
        c.check(a["bos"] == b["bos"], f"{label}{mode}: add_bos {a['bos']} vs {b['bos']}")
        missing = set(a["eog"]) - set(b["eog"])
        c.check(not missing, f"{label}: end-of-generation ids {sorted(missing)} lost")
        if special:
            print(f"  {label}: tokenizer {same}/{len(TEXTS)} strings equal; eog {a['eog']} -> "
                  f"{b['eog']}", flush=True)


def tokenizer_differs_without_compat(orig, oll, texts_file):
    a = tokenize(orig, texts_file)
    b = tokenize(oll, texts_file, env=env_off())
    return b is None or a["ids"] != b["ids"] or not set(a["eog"]) <= set(b["eog"]) or \
        a["bos"] != b["bos"]


def gemma4_bpe_vocab(path):
    """A llama.cpp-layout Gemma 4 vocabulary (tokenizer.ggml.model gemma4: BPE with merges) from
    the Gemma 3 tokenizer.json the oracle installs (the families share the vocabulary)."""
    home = os.environ.get("HEARTH_ORACLE_HOME", os.path.expanduser("~/.cache/hearth-oracle"))
    tj_path = os.path.join(home, "node_modules", "@lenml", "tokenizer-gemma3", "models",
                           "tokenizer.json")
    with open(tj_path, encoding="utf-8") as f:
        tj = json.load(f)
    vocab, merges = tj["model"]["vocab"], tj["model"]["merges"]
    n = max(max(vocab.values()), max(a["id"] for a in tj["added_tokens"])) + 1
    tokens, types = [""] * n, np.ones(n, dtype=np.int32)
    for t, i in vocab.items():
        tokens[i] = t
    for a in tj["added_tokens"]:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = 3 if a["special"] else 4
    for i, t in enumerate(tokens):
        if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            types[i] = 6
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    g = G.Gguf()
    g.set("general.architecture", G.STR, "gemma4")
    g.set("tokenizer.ggml.model", G.STR, "gemma4")
    g.set("tokenizer.ggml.pre", G.STR, "gemma4")
    g.set("tokenizer.ggml.tokens", G.ARR, tokens, G.STR)
    g.set("tokenizer.ggml.token_type", G.ARR, types, G.I32)
    g.set("tokenizer.ggml.scores", G.ARR, np.zeros(n, dtype=np.float32), G.F32)
    g.set("tokenizer.ggml.merges", G.ARR, merges, G.STR)
    for k, v in (("bos", 2), ("eos", 1), ("unknown", 3), ("padding", 0)):
        g.set(f"tokenizer.ggml.{k}_token_id", G.U32, v)
    g.set("tokenizer.ggml.add_bos_token", G.BOOL, True)
    g.set("tokenizer.ggml.add_space_prefix", G.BOOL, False)
    G.write(path, g)


def main():
    c = Checker("ollama_layout")
    tmp = tempfile.mkdtemp(prefix="hearth-olayout-")
    texts_file = os.path.join(tmp, "texts.json")
    with open(texts_file, "w", encoding="utf-8") as f:
        json.dump(TEXTS, f)
    try:
        for name in MODELS:
            orig = os.path.join(FIXTURES, name + ".gguf")
            oll = os.path.join(tmp, name + "-ollama.gguf")
            g = ollama_layout.convert(orig, oll, seed=len(name))
            src = G.read(orig)
            extra = sorted({t.name.split(".")[0] for t in g.tensors} -
                           {t.name.split(".")[0] for t in src.tensors})
            prompt = load_ref(os.path.join(FIXTURES, name + ".ref.json"))["prompt_tokens"]
            a, ja = logits(orig, prompt)
            b, jb = logits(oll, prompt)
            c.check(a is not None, f"{name}: original does not load: {ja}")
            c.check(b is not None, f"{name}: Ollama layout does not load: {jb}")
            if a is None or b is None:
                continue
            c.check("layout_fixes" not in ja, f"{name}: fixes applied to the llama.cpp file")
            c.check(bool(jb.get("layout_fixes")), f"{name}: no layout fixes reported")
            added = len(g.tensors) - len(src.tensors)
            c.check(jb.get("ignored_tensors", 0) == added,
                    f"{name}: {jb.get('ignored_tensors', 0)} tensors ignored, {added} added")
            c.check(a.shape == b.shape, f"{name}: shape {a.shape} vs {b.shape}")
            d = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
            c.check(d == 0.0, f"{name}: logits differ by up to {d:.3g} (want bit-identical)")
            ga, gb = greedy(orig, prompt), greedy(oll, prompt)
            c.check(ga is not None and ga == gb, f"{name}: greedy {ga} vs {gb}")
            print(f"{name}: {len(src.tensors)} -> {len(g.tensors)} tensors (extra prefixes "
                  f"{extra}, {jb.get('ignored_tensors', 0)} ignored), {len(src.kvs)} -> "
                  f"{len(g.kvs)} keys; logits max |diff| {d} over {a.shape[0]} positions; "
                  f"greedy equal: {ga == gb}", flush=True)
            for fix in jb.get("layout_fixes", []):
                print("    " + fix, flush=True)
            compare_tokenizers(c, name, orig, oll, texts_file)
            # Without the normalisation the Ollama file must fail or differ somewhere.
            off, _ = logits(oll, prompt, env=env_off())
            differs = off is None or off.shape != a.shape or not np.array_equal(off, a) or \
                tokenizer_differs_without_compat(orig, oll, texts_file)
            if name in SAME_WITHOUT_FIXES:
                c.check(not differs, f"{name}: differs without the fixes (update the test)")
            else:
                c.check(differs, f"{name}: the Ollama layout behaves the same without the fixes "
                                 "(the checks above could not fail)")

        # `hearth quantize` of an Ollama-layout file writes the normalised text model: it loads
        # (its markers are read again) and equals the original quantized the same way.
        for name in ("qwen35-F16", "gemma3-F16"):
            prompt = load_ref(os.path.join(FIXTURES, name + ".ref.json"))["prompt_tokens"]
            orig = os.path.join(FIXTURES, name + ".gguf")
            oll = os.path.join(tmp, name + "-ollama.gguf")
            outs = []
            for src in (orig, oll):
                dst = src.replace(".gguf", "") if src == oll else os.path.join(tmp, name + "-orig")
                dst += "-Q8_0.gguf"
                rc, _, se = run([HEARTH, "quantize", src, dst, "Q8_0"])
                c.check(rc == 0, f"{name}: quantize {os.path.basename(src)} failed: {se[-300:]}")
                outs.append(logits(dst, prompt)[0] if rc == 0 else None)
            ok = outs[0] is not None and outs[1] is not None and np.array_equal(outs[0], outs[1])
            c.check(ok, f"{name}: Q8_0 of the Ollama layout differs from Q8_0 of the original")
            print(f"{name}: quantized to Q8_0 from both layouts, logits equal: {ok}", flush=True)

        # Tokenizer-only files where Ollama's tokenizer metadata differs most.
        vocabs = []
        g4 = os.path.join(tmp, "vocab-gemma4.gguf")
        gemma4_bpe_vocab(g4)
        vocabs.append(("vocab-gemma4 (BPE)", g4))
        l4 = G.read(os.path.join(FIXTURES, "llama4-F16.gguf"))
        l4.set("tokenizer.ggml.pre", G.STR, "llama4")  # what llama.cpp writes for Llama 4
        l4.tensors = []
        l4_path = os.path.join(tmp, "vocab-llama4.gguf")
        G.write(l4_path, l4)
        vocabs.append(("vocab-llama4", l4_path))
        vocabs.append(("vocab-llama3_1", os.path.join(FIXTURES, "vocab-llama3_1.gguf")))
        for label, orig in vocabs:
            oll = os.path.join(tmp, os.path.basename(orig).replace(".gguf", "-ollama.gguf"))
            g = ollama_layout.convert(orig, oll)
            print(f"{label}: tokenizer.ggml.model {g.get('tokenizer.ggml.model')!r}, pre "
                  f"{g.get('tokenizer.ggml.pre')!r}, eos {g.get('tokenizer.ggml.eos_token_id')}",
                  flush=True)
            compare_tokenizers(c, label, orig, oll, texts_file)
            c.check(tokenizer_differs_without_compat(orig, oll, texts_file),
                    f"{label}: the Ollama layout tokenizes the same without the fixes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    c.finish()


if __name__ == "__main__":
    main()
