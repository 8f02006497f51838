"""`hearth perplexity` against llama.cpp: the oracle's logits for the same chunks (tokenized by
llama.cpp, first token replaced by BOS, second half scored, as llama-perplexity does) give the
same perplexity; a model compared with its own saved predictions has KL 0 and the same top token
everywhere; a quantized file's KL is positive and a mismatched reference is refused."""
import json
import math
import os
import subprocess
import tempfile

import numpy as np

from harness import FIXTURES, HEARTH, ORACLE, Checker, oracle_logits, run_json

TEXT = ("In the beginning God created the heaven and the earth. And the earth was without form, "
        "and void; and darkness was upon the face of the deep. And the Spirit of God moved upon "
        "the face of the waters. And God said, Let there be light: and there was light. And God "
        "saw the light, that it was good: and God divided the light from the darkness. ") * 3


def hearth_ppl(model, path, ctx, chunks, extra=()):
    p = subprocess.run([HEARTH, "perplexity", model, "-f", path, "-c", str(ctx), "--chunks",
                        str(chunks), "--json", "--kv-type", "f32", *extra],
                       capture_output=True, text=True, timeout=600)
    return p.returncode, (json.loads(p.stdout) if p.returncode == 0 else p.stderr)


def main():
    os.environ["HEARTH_ATTN"] = "exact"  # llama.cpp's summation order, as test_fixtures
    c = Checker("perplexity")
    tmp = tempfile.mkdtemp(prefix="hearth-ppl-")
    text = os.path.join(tmp, "text.txt")
    with open(text, "w") as f:
        f.write(TEXT)
    ctx, chunks = 32, 3
    for name in ("llama-F16", "qwen2-F16"):
        model = os.path.join(FIXTURES, name + ".gguf")
        info = run_json(["node", os.path.join(ORACLE, "llama-oracle.mjs"), "info", model])
        toks = run_json(["node", os.path.join(ORACLE, "llama-oracle.mjs"), "tokenize", model,
                         "--text", TEXT, "--no-bos", "--no-special"])["tokens"]
        bos = info["tokenizer"]["bos"] if info["tokenizer"]["add_bos"] else None
        nll, n = 0.0, 0
        for k in range(chunks):
            chunk = list(toks[k * ctx:(k + 1) * ctx])
            if bos is not None:
                chunk[0] = bos
            rows = oracle_logits(model, chunk, all_positions=True).astype(np.float64)
            for j in range(ctx // 2, ctx - 1):
                r = rows[j]
                lse = r.max() + math.log(np.exp(r - r.max()).sum())
                nll -= r[chunk[j + 1]] - lse
                n += 1
        ref_ppl = math.exp(nll / n)
        rc, ours = hearth_ppl(model, text, ctx, chunks)
        c.check(rc == 0, f"{name}: hearth perplexity failed: {ours}")
        if rc != 0:
            continue
        c.check(ours["scored_tokens"] == n, f"{name}: scored {ours['scored_tokens']} != {n}")
        rel = abs(ours["ppl"] - ref_ppl) / ref_ppl
        print(f"{name}: ppl hearth {ours['ppl']:.4f} llama.cpp {ref_ppl:.4f} (rel {rel:.1e})")
        c.check(rel < 2e-3, f"{name}: perplexity {ours['ppl']} vs llama.cpp {ref_ppl}")

    model = os.path.join(FIXTURES, "llama-F16.gguf")
    base = os.path.join(tmp, "base.bin")
    rc, r = hearth_ppl(model, text, ctx, chunks, ["--save-base", base])
    c.check(rc == 0, f"save-base failed: {r}")
    rc, same = hearth_ppl(model, text, ctx, chunks, ["--kl-base", base])
    c.check(rc == 0 and abs(same["kl"]) < 1e-6 and same["same_top"] == 1.0,
            f"self KL should be 0 with identical top tokens: {same}")
    rc, q = hearth_ppl(os.path.join(FIXTURES, "llama-Q4_K_M.gguf"), text, ctx, chunks,
                       ["--kl-base", base])
    c.check(rc == 0 and q["kl"] > 1e-4, f"Q4_K_M KL should be positive: {q}")
    if rc == 0:
        print(f"llama Q4_K_M vs F16: KL {q['kl']:.5f} same top {q['same_top']:.3f}")
    rc, err = hearth_ppl(model, text, 16, chunks, ["--kl-base", base])
    c.check(rc != 0 and "another text" in err, f"a mismatched reference must be refused: {err}")
    c.finish()


if __name__ == "__main__":
    main()
