"""LoRA adapters end to end through `hearth serve`: `hearth create` from a Modelfile with two
ADAPTER lines (the second with a scale), /api/show listing them, requests selecting adapters
with llama-server's `lora: [{"id", "scale"}]` field on /api/generate and /v1/completions, and
GET/POST /lora-adapters.

The main check: two (then three) concurrent greedy requests that select different adapters (and
none) are decoded by one runner in shared forward passes, and each gives exactly the tokens the
same request gives alone; those equal `hearth greedy --lora` on the same prompt tokens (the
in-process engine), so the server applies the adapter it was asked for at the scale asked.
The requests must overlap in time (checked from their streamed chunks' arrival), else they were
not batched together.
"""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

from harness import FIXTURES, HEARTH, Checker, hearth_greedy
from serve_util import Server

N = 24
PROMPT = "The quick brown fox jumps over the lazy dog because"


def run(args, env):
    p = subprocess.run([HEARTH, *args], env=env, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def generate(s, lora=None, stamps=None):
    body = {"model": "lm", "prompt": PROMPT, "raw": True, "stream": True,
            "options": {"temperature": 0, "num_predict": N, "seed": 1}}
    if lora is not None:
        body["lora"] = lora
    st, _, lines = s.ndjson("/api/generate", body, timeout=300)
    if st != 200:
        return st, lines, None
    if stamps is not None:
        stamps.append(time.monotonic())
    last = lines[-1]
    return st, "".join(l.get("response", "") for l in lines), last.get("context")


def main():
    c = Checker("server-lora")
    base = os.path.join(FIXTURES, "llama-F16.gguf")
    work = tempfile.mkdtemp(prefix="hearth-lora-e2e-")
    a1, a2 = os.path.join(work, "a1.gguf"), os.path.join(work, "a2.gguf")
    for path, args in ((a1, ["--rank", "8", "--alpha", "16", "--seed", "11"]),
                       (a2, ["--rank", "4", "--seed", "12", "--targets", "q,v,down,output"])):
        rc, _, err = run(["lora-random", "-m", base, "-o", path, *args], os.environ)
        c.check(rc == 0, f"lora-random: {err}")
    mf = os.path.join(work, "Modelfile")
    with open(mf, "w") as f:
        f.write(f"FROM {base}\nADAPTER {a1}\nADAPTER {a2} 0.5\n")
    s = Server(env={"HEARTH_NUM_PARALLEL": "4", "HEARTH_ATTN": "exact"})
    env = dict(os.environ, HEARTH_HOST=f"127.0.0.1:{s.port}", HEARTH_MODELS=s.models)
    try:
        rc, _, err = run(["create", "lm", "-f", mf], env)
        c.check(rc == 0 and "success" in err, f"create with two ADAPTER lines: {rc} {err!r}")
        st, show = s.json("POST", "/api/show", {"model": "lm"})
        ads = (show or {}).get("adapters", [])
        c.check(st == 200 and [a["id"] for a in ads] == [0, 1] and
                [a["scale"] for a in ads] == [1, 0.5], f"/api/show adapters: {ads}")
        c.check(f"ADAPTER" in show.get("modelfile", "") and " 0.5\n" in show["modelfile"],
                f"show --modelfile keeps the ADAPTER lines: {show.get('modelfile')!r}")

        # Alone, one after the other.
        alone = {}
        for key, lora in (("a1", [{"id": 0, "scale": 1.0}]), ("a2", [{"id": 1, "scale": 0.5}]),
                          ("base", []), ("default", None)):
            st, text, ctx = generate(s, lora)
            c.check(st == 200, f"generate {key}: {st} {text}")
            alone[key] = (text, ctx)
        c.check(len({alone[k][0] for k in ("a1", "a2", "base")}) == 3,
                f"the adapters change the output: {[alone[k][0] for k in ('a1', 'a2', 'base')]}")
        c.check(alone["default"][0] not in (alone["a1"][0], alone["a2"][0], alone["base"][0]),
                "without a lora field both ADAPTER lines apply")

        # The in-process engine with the same adapter gives the same tokens.
        ctx = alone["a1"][1]
        if ctx:
            prompt_tokens = ctx[:len(ctx) - N]
            for key, lora in (("a1", f"{a1}:1"), ("a2", f"{a2}:0.5"),
                              ("default", f"{a1}:1,{a2}:0.5")):
                want = hearth_greedy(base, prompt_tokens, N, extra=("--lora", lora))
                got = alone[key][1][len(prompt_tokens):]
                c.check(got == want, f"{key}: server {got} vs hearth greedy --lora {want}")

        # Concurrent: different adapters (and none) in one runner, decoded together.
        for cases in ((("a1", [{"id": 0, "scale": 1.0}]), ("a2", [{"id": 1, "scale": 0.5}])),
                      (("a2", [{"id": 1, "scale": 0.5}]), ("base", []),
                       ("a1", [{"id": 0, "scale": 1.0}]))):
            results, threads, starts, ends = {}, [], [], []

            def worker(i, key, lora):
                starts.append(time.monotonic())
                results[i] = (key, generate(s, lora, ends))

            for i, (key, lora) in enumerate(cases):
                threads.append(threading.Thread(target=worker, args=(i, key, lora)))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for i, (key, (st, text, _)) in results.items():
                c.check(st == 200 and text == alone[key][0],
                        f"concurrent {key}: {text!r} vs alone {alone[key][0]!r}")
            c.check(max(starts) < min(ends), "the concurrent requests overlapped")
        log = s.read_log()
        c.check(log.count("LoRA adapter") == 2, f"each adapter loaded once: {log.count('LoRA adapter')}")

        # OpenAI completions take the same field.
        st, r = s.json("POST", "/v1/completions", {
            "model": "lm", "prompt": PROMPT, "max_tokens": N, "temperature": 0,
            "lora": [{"id": 0, "scale": 1.0}]})
        c.check(st == 200 and r["choices"][0]["text"] == alone["a1"][0],
                f"/v1/completions with lora: {st} {r}")

        # Bad selections are 400s naming the problem.
        st, _, body = s.request("POST", "/api/generate", {"model": "lm", "prompt": "x",
                                                           "lora": [{"id": 5}]})
        c.check(st == 400 and "adapter id 5" in body, f"unknown id: {st} {body}")
        st, _, body = s.request("POST", "/api/generate", {"model": "lm", "prompt": "x",
                                                           "lora": {"id": 0}})
        c.check(st == 400 and "array" in body, f"lora not an array: {st} {body}")

        # /lora-adapters: the model's adapters; POST sets the scales of requests without `lora`.
        st, lst = s.json("GET", "/lora-adapters?model=lm")
        c.check(st == 200 and [a["scale"] for a in lst] == [1, 0.5], f"GET /lora-adapters: {lst}")
        st, lst = s.json("POST", "/lora-adapters?model=lm", [{"id": 0, "scale": 0.0}])
        c.check(st == 200 and [a["scale"] for a in lst] == [0, 0.5], f"POST /lora-adapters: {lst}")
        st, text, _ = generate(s)
        c.check(text == alone["a2"][0], f"after POST /lora-adapters the default is a2 alone")
        st, lst = s.json("GET", "/lora-adapters")  # the one loaded model
        c.check(st == 200 and len(lst) == 2, f"GET /lora-adapters without a model: {st} {lst}")

        # An adapter for another architecture is refused at create, naming the problem.
        q3 = os.path.join(work, "q3.gguf")
        run(["lora-random", "-m", os.path.join(FIXTURES, "qwen3-F16.gguf"), "-o", q3], os.environ)
        with open(mf, "w") as f:
            f.write(f"FROM {base}\nADAPTER {q3}\n")
        rc, _, err = run(["create", "bad", "-f", mf], env)
        c.check(rc != 0 and "architecture 'qwen3'" in err, f"wrong-arch adapter: {rc} {err!r}")
    finally:
        s.stop()
        shutil.rmtree(work, ignore_errors=True)
    c.finish()


if __name__ == "__main__":
    main()
