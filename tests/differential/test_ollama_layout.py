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
default; its tokenizer difference is covered by the Llama 4 vocabulary.

EmbeddingGemma (a small random gemma-embedding model from tools/embed/mkgemmaemb.py, with the
real Gemma 3 vocabulary, rewritten as the gemma3 file with pooling_type and dense.0/dense.1 that
Ollama's runtime loads as gemma3_embed): `hearth embed` reports the layout fixes and gives
bit-identical pooled vectors for several token sequences (the longer ones cross the sliding
window), tokenization is identical, `hearth serve` embeds both files bit-identically through
/api/embed and /api/show lists only the embedding capability; without the fixes the Ollama file
fails to load or embeds differently."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from harness import FIXTURES, HEARTH, Checker, load_ref
from serve_util import Server, put_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import gguf_io as G  # noqa: E402
import ollama_layout  # noqa: E402

MKGEMB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "embed",
                      "mkgemmaemb.py")

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


def embed(model, tokens, env=None):
    """`hearth embed` JSON, or None when hearth refuses the file."""
    rc, so, _ = run([HEARTH, "embed", "-m", model, "--tokens", ",".join(map(str, tokens))], env)
    return json.loads(so.strip().splitlines()[-1]) if rc == 0 else None


def embedding_gemma(c, tmp, texts_file):
    orig = os.path.join(tmp, "gemma-embedding.gguf")
    oll = os.path.join(tmp, "gemma-embedding-ollama.gguf")
    # Small dims (the 262k-token vocabulary dominates); 6 layers so that layer 5 is global.
    subprocess.run(["/usr/bin/python3", MKGEMB, orig, "--seed", "5", "--n-embd", "64",
                    "--n-head", "2", "--head-dim", "32", "--n-ff", "128", "--dense-ff", "256"],
                   check=True, stdout=subprocess.DEVNULL)
    g = ollama_layout.convert(orig, oll)
    dense = [t.name for t in g.tensors if t.name.startswith("dense")]
    print(f"gemma-embedding: architecture {g.get('general.architecture')!r}, pooling_type "
          f"{g.get('gemma3.pooling_type')}, tensors {dense}", flush=True)
    rng = np.random.default_rng(7)
    seqs = [tokenize(orig, texts_file)["ids"][i] for i in (0, 1, 6)]  # with BOS and EOS
    seqs += [[2] + rng.integers(3, 262000, n).tolist() + [1] for n in (18, 41)]
    fixes = []
    for ids in seqs:
        label = f"gemma-embedding {len(ids)} tokens"
        a, b = embed(orig, ids), embed(oll, ids)
        c.check(a is not None and b is not None, f"{label}: embed failed: {a} / {b}")
        if a is None or b is None:
            continue
        c.check("layout_fixes" not in a, f"{label}: fixes applied to the llama.cpp file")
        fixes = b.get("layout_fixes", [])
        c.check(any("gemma-embedding" in f for f in fixes), f"{label}: fixes reported: {fixes}")
        c.check(b.get("ignored_tensors") == 0, f"{label}: {b.get('ignored_tensors')} ignored")
        same = a["embedding"] == b["embedding"] and a["n_embd"] == b["n_embd"] == 64
        c.check(same, f"{label}: embeddings differ (want bit-identical)")
        off = embed(oll, ids, env=env_off())
        c.check(off is None or off["embedding"] != a["embedding"],
                f"{label}: the Ollama layout embeds the same without the fixes")
        how = "refused" if off is None else \
            "differs" if off["embedding"] != a["embedding"] else "same"
        print(f"  {label}: bit-identical {same}; without the fixes: {how}", flush=True)
    for fix in fixes:
        print("    " + fix, flush=True)
    compare_tokenizers(c, "gemma-embedding", orig, oll, texts_file)

    # Through the server: both files embed the same (normalized) vectors; embedding only.
    s = Server(models=os.path.join(tmp, "store"), env={"HEARTH_NUM_PARALLEL": "1"})
    try:
        put_model(s.models, "gemb:latest", orig)
        put_model(s.models, "gemb-ollama:latest", oll)
        texts = json.load(open(texts_file, encoding="utf-8"))[:6]
        vecs = {}
        for name in ("gemb", "gemb-ollama"):
            st, r = s.json("POST", "/api/embed", {"model": name, "input": texts})
            c.check(st == 200 and len(r.get("embeddings", [])) == len(texts),
                    f"/api/embed {name}: {st} {r}")
            vecs[name] = r.get("embeddings") if st == 200 else None
        ok = vecs["gemb"] is not None and vecs["gemb"] == vecs["gemb-ollama"]
        c.check(ok, "/api/embed: the Ollama layout's vectors differ from the original's")
        st, r = s.json("POST", "/api/show", {"model": "gemb-ollama"})
        c.check(st == 200 and r.get("capabilities") == ["embedding"],
                f"/api/show capabilities: {st} {r.get('capabilities') if st == 200 else r}")
        print(f"  server: /api/embed of {len(texts)} texts identical {ok}; capabilities "
              f"{r.get('capabilities') if st == 200 else st}; family "
              f"{r.get('details', {}).get('family') if st == 200 else '?'}", flush=True)
    finally:
        s.stop()


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

        embedding_gemma(c, tmp, texts_file)

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
