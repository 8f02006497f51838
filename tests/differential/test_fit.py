"""The hardware-fit advisor against measurement.

For one fixture of every architecture, the estimate GET /api/fit gives at a 4096-token context is
within 5% (or 64 MiB) of the resident memory the server process gains by loading the model and
answering one request that fills that context (VmRSS from /proc, before and after). The estimate
read from a registry's header alone (ranged reads) equals the one from the whole file. /api/fit
without a model lists every local model. A server whose memory limit can never hold a model
refuses to pull it before any byte is downloaded, and refuses to load it, with the same figure.
"""
import json
import os
import random
import subprocess
import sys

from harness import FIXTURES, HEARTH
from serve_util import Server, put_model

ARCHS = ["llama-Q4_K_M", "qwen2-Q8_0", "qwen3-F16", "qwen3moe-Q4_K_M", "gemma3-Q8_0",
         "gemma4-Q4_K_M", "llama4-Q8_0", "qwen35-Q4_K_M", "qwen35moe-Q8_0"]
CTX = 4096
MIB = 1 << 20

checks = {"passed": 0, "failed": 0}


def check(ok, what):
    checks["passed" if ok else "failed"] += 1
    if not ok:
        print("FAIL:", what)


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def n_tokens(gguf, text):
    out = subprocess.run([HEARTH, "tokenize", "-m", gguf, "--text", text], check=True,
                         capture_output=True, text=True).stdout
    return len(json.loads(out)["tokens"]) if out.strip().startswith("{") else len(json.loads(out))


def filling_prompt(gguf, want):
    """Plain words that tokenize to a little under `want` tokens."""
    rnd = random.Random(7)
    words = ["river", "stone", "quiet", "lantern", "harvest", "copper", "meadow", "signal",
             "winter", "orchard", "bridge", "candle", "thunder", "pepper", "velvet", "anchor"]
    text = " ".join(rnd.choice(words) for _ in range(4000))
    n = n_tokens(gguf, text)
    text = text[: int(len(text) * (want - 64) / n)]
    return text, n_tokens(gguf, text)


def measure(gguf, ctx=CTX, timeout=600):
    """Loads `gguf` into a fresh server and answers one request that fills a `ctx` context.
    Returns (the /api/fit report for it, VmRSS growth over the load and request, prompt tokens,
    the same report read from the server's own registry endpoints)."""
    s = Server(env={"HEARTH_NUM_PARALLEL": "1", "HEARTH_KEEP_ALIVE": "10m"})
    try:
        put_model(s.models, "m:latest", gguf)
        st, fit = s.json("GET", f"/api/fit?model=m&ctx={ctx}&parallel=1", timeout=timeout)
        if st != 200:
            raise RuntimeError(f"/api/fit: {st} {fit}")
        prompt, n = filling_prompt(gguf, ctx)
        before = rss(s.proc.pid)
        st, out = s.json("POST", "/api/generate",
                         {"model": "m", "prompt": prompt, "raw": True, "stream": False,
                          "options": {"num_ctx": ctx, "num_predict": 8, "temperature": 0}},
                         timeout=timeout)
        after = rss(s.proc.pid)
        if st != 200:
            raise RuntimeError(f"/api/generate: {st} {out}")
        st, remote = s.json("GET", f"/api/fit?model=127.0.0.1:{s.port}/library/m:latest"
                                   f"&insecure=true&ctx={ctx}&parallel=1", timeout=timeout)
        return fit, after - before, out.get("prompt_eval_count", 0), (st, remote)
    finally:
        s.stop()


def report_line(name, fit, grown, n):
    m = fit["memory"]
    return (f"{name:18s} estimate {m['total'] / MIB:8.1f} MiB  measured {grown / MIB:8.1f} MiB  "
            f"(weights {m['weights'] / MIB:.1f}, kv {m['kv_cache'] / MIB:.1f}, "
            f"compute {m['compute'] / MIB:.1f}, tokenizer {m['tokenizer'] / MIB:.1f}; "
            f"prompt {n} tokens)")


def main():
    for name in ARCHS:
        gguf = os.path.join(FIXTURES, name + ".gguf")
        fit, grown, n, (st, remote) = measure(gguf)
        check(fit.get("source") == "local", f"{name}: /api/fit {fit}")
        check(n >= CTX - 512, f"{name}: the request did not fill the context: {n} tokens")
        est = fit["memory"]["total"]
        tol = max(0.05 * est, 64 * MIB)
        print(report_line(name, fit, grown, n))
        check(abs(est - grown) <= tol,
              f"{name}: estimate {est} vs RSS growth {grown} (tolerance {tol:.0f})")
        # The same model sized from a registry's header: the server's own /v2 endpoints.
        check(st == 200 and remote.get("source") == "registry",
              f"{name}: remote fit {st} {remote}")
        if st == 200:
            check(remote["memory"] == fit["memory"] and
                  remote["quantizations"] == fit["quantizations"],
                  f"{name}: header-only estimate differs: {remote['memory']} vs {fit['memory']}")

    # Every local model at once; a machine section that names what was measured.
    s = Server()
    try:
        put_model(s.models, "a:latest", os.path.join(FIXTURES, "llama-Q8_0.gguf"))
        put_model(s.models, "b:latest", os.path.join(FIXTURES, "qwen35-Q8_0.gguf"))
        st, all_ = s.json("GET", "/api/fit")
        names = sorted(m["name"] for m in all_.get("models", [])) if st == 200 else []
        check(names == ["a:latest", "b:latest"], f"/api/fit lists {st} {all_}")
        if st == 200:
            mach = all_["machine"]
            check(mach["memory_total"] > 0 and mach["memory_available"] > 0 and
                  mach.get("memory_bandwidth", 0) > 1e9 and mach["threads"] >= 1,
                  f"machine section {mach}")
            check(all(m["verdict"] == "fits" and m["max_context"] >= 4096 for m in all_["models"]),
                  f"tiny models fit: {all_['models']}")
        st, bad = s.json("GET", "/api/fit?model=nothing-here&insecure=true")
        check(st in (404, 500, 503) and "error" in bad, f"unknown model: {st} {bad}")
        st, bad = s.json("GET", "/api/fit?model=a&ctx=-3")
        check(st == 400, f"bad ctx: {st} {bad}")

        # A server allowed less memory than the model needs: the pull is refused before any
        # byte arrives, the load is refused with the same estimate.
        st, fa = s.json("GET", f"/api/fit?model=a&ctx={CTX}&parallel=1")
        need = fa["memory"]["total"]
        b = Server(env={"HEARTH_MAX_MEMORY": str(need // 2)})
        try:
            st, out = b.json("POST", "/api/pull", {"model": f"127.0.0.1:{s.port}/library/a:latest",
                                                   "insecure": True, "stream": False})
            check(st >= 400 and "needs" in json.dumps(out) and "hearth fit" in json.dumps(out),
                  f"pull past the memory limit: {st} {out}")
            blobs = os.path.join(b.models, "blobs")
            downloads = os.path.join(b.models, "downloads")
            got = [f for d in (blobs, downloads) if os.path.isdir(d) for f in os.listdir(d)]
            check(got == [], f"nothing downloaded for a refused pull: {got}")
            st, fb = b.json("GET", f"/api/fit?model=127.0.0.1:{s.port}/library/a:latest"
                                   f"&insecure=true&ctx={CTX}&parallel=1")
            check(st == 200 and fb["verdict"] == "too_large" and fb["fits"] is False,
                  f"verdict under the limit: {st} {fb}")
            put_model(b.models, "a:latest", os.path.join(FIXTURES, "llama-Q8_0.gguf"))
            st, out = b.json("POST", "/api/generate", {"model": "a", "prompt": "hi",
                                                       "stream": False})
            check(st == 500 and "more system memory" in json.dumps(out),
                  f"load past the memory limit: {st} {out}")
        finally:
            b.stop()
    finally:
        s.stop()

    # The CLI without a server works the same answer out in-process.
    env = dict(os.environ, HEARTH_HOST="127.0.0.1:1")
    r = subprocess.run([HEARTH, "fit", "--json", "--ctx", "2048",
                        os.path.join(FIXTURES, "gemma3-Q4_K_M.gguf")],
                       capture_output=True, text=True, env=env, timeout=120)
    ok = r.returncode == 0
    j = json.loads(r.stdout) if ok else {}
    check(ok and j.get("source") == "file" and j.get("context") == 2048 and
          j["memory"]["total"] == sum(j["memory"][k] for k in
                                      ("weights", "kv_cache", "compute", "tokenizer")) and
          {q["quantization"] for q in j["quantizations"]} >= {"Q8_0", "Q4_K_M", "F16"},
          f"hearth fit in-process: {r.returncode} {r.stderr[-500:]} {r.stdout[:500]}")

    total = checks["passed"] + checks["failed"]
    print(f"fit: {checks['passed']}/{total} checks passed")
    sys.exit(1 if checks["failed"] else 0)


if __name__ == "__main__":
    main()
