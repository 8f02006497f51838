"""POST /api/finetune: a LoRA adapter trained on a stored model from inline chat data, progress
streamed as NDJSON (step, loss, tokens/s, ETA) like /api/pull, the adapter kept as a blob in
llama.cpp's adapter format, a new model made of the base plus an ADAPTER layer; bad requests
answered 400/404 before any training."""
import json
import os

from harness import FIXTURES, Checker, hearth_greedy
from serve_util import Server, put_model

MODEL = os.path.join(FIXTURES, "llama-Q8_0.gguf")
DATA = [
    {"messages": [{"role": "user", "content": "What is the capital of France?"},
                  {"role": "assistant", "content": "The capital of France is Paris."}]},
    {"messages": [{"role": "user", "content": "Name a fruit."},
                  {"role": "assistant", "content": "An apple."}]},
    {"messages": [{"role": "user", "content": "Count to three."},
                  {"role": "assistant", "content": "One, two, three."}]},
    {"messages": [{"role": "user", "content": "Say hello."},
                  {"role": "assistant", "content": "Hello!"},
                  {"role": "user", "content": "Louder."},
                  {"role": "assistant", "content": "HELLO!"}]},
]


def main():
    c = Checker("server-finetune")
    s = Server()
    try:
        put_model(s.models, "tiny:latest", MODEL)
        req = {"model": "tiny", "name": "tiny-tuned", "data": DATA, "rank": 4, "alpha": 8,
               "epochs": 8, "ctx": 48, "accum": 1, "learning_rate": 0.01}
        st, ct, lines = s.ndjson("/api/finetune", req, timeout=600)
        c.check(st == 200 and ct.startswith("application/x-ndjson"), f"finetune: {st} {lines}")
        if st == 200:
            steps = [l for l in lines if l.get("status") == "training" and "step" in l]
            c.check(len(steps) > 2, f"progress lines: {lines[:3]}")
            total = next((l["total_steps"] for l in lines if "total_steps" in l), None)
            c.check(steps and steps[-1]["step"] == total, f"last step {steps[-1:]} of {total}")
            c.check(all(k in steps[0] for k in ("loss", "tokens_per_second", "eta_seconds")),
                    f"a progress line: {steps[0]}")
            c.check(steps[-1]["loss"] < steps[0]["loss"],
                    f"loss {steps[0]['loss']} -> {steps[-1]['loss']}")
            last = lines[-1]
            c.check(last.get("status") == "success" and last.get("adapter", "").startswith(
                "sha256:") and last.get("model") == "tiny-tuned:latest", f"last line {last}")
            print(f"{len(steps)} steps, loss {steps[0]['loss']:.3f} -> {steps[-1]['loss']:.3f}")
            man_path = os.path.join(s.models, "manifests", "registry.ollama.ai", "library",
                                    "tiny-tuned", "latest")
            with open(man_path) as f:
                man = json.load(f)
            kinds = [l["mediaType"] for l in man["layers"]]
            c.check(kinds.count("application/vnd.ollama.image.adapter") == 1 and
                    "application/vnd.ollama.image.model" in kinds, f"layers {kinds}")
            blob = os.path.join(s.models, "blobs", last["adapter"].replace(":", "-"))
            with open(blob, "rb") as f:
                head = f.read(4096)
            c.check(head[:4] == b"GGUF" and b"adapter" in head and b"lora_a" in head,
                    "the adapter blob is a GGUF LoRA adapter")
            st, tags = s.json("GET", "/api/tags")
            c.check(any(m["name"] == "tiny-tuned:latest" for m in tags["models"]), "listed")
            # The new model runs with its adapter: greedy through the API equals `hearth greedy`
            # on the base with that adapter file, and differs from the base's own answer.
            greedy = {"temperature": 0, "top_k": 1, "num_predict": 10, "seed": 1}
            st, r = s.json("POST", "/api/generate", {"model": "tiny-tuned", "prompt": "Name a",
                                                     "stream": False, "options": greedy})
            c.check(st == 200, f"generate with the tuned model: {st} {r}")
            if st == 200:
                ctx, n = r["context"], r["prompt_eval_count"]
                ref = hearth_greedy(MODEL, ctx[:n], len(ctx) - n, extra=["--lora", blob])
                base = hearth_greedy(MODEL, ctx[:n], len(ctx) - n)
                c.check(ctx[n:] == ref[:len(ctx) - n], f"API {ctx[n:]} != with adapter {ref}")
                c.check(ctx[n:] != base[:len(ctx) - n], "the tuned model answers as the base")

        # Refused before training: no data, unknown model, malformed data, bad numbers.
        for body, code in ((dict(model="tiny"), 400), (dict(model="nope", data=DATA), 404),
                           (dict(model="tiny", data=[{"x": 1}]), 400),
                           (dict(model="tiny", data=DATA, ctx="big"), 400),
                           (dict(model="tiny", data=DATA, epochs=0), 400),
                           (dict(model="tiny", data=[{"messages": [{"role": "user",
                                                                    "content": "hi"}]}]), 400)):
            st, r = s.json("POST", "/api/finetune", body)
            c.check(st == code and isinstance(r, dict) and "error" in r,
                    f"{body}: expected {code}, got {st} {r}")
        # An unknown target fails in the run: the stream ends with an error line.
        st, ct, lines = s.ndjson("/api/finetune", dict(model="tiny", data=DATA,
                                                       targets=["q", "attn"]))
        c.check(st == 200 and "error" in lines[-1] and "attn" in lines[-1]["error"],
                f"bad target: {st} {lines}")
    finally:
        s.stop()
    c.finish()


if __name__ == "__main__":
    main()
