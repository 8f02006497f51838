"""`hearth serve` inference (issue #4): /api/generate and /api/chat (NDJSON streaming and not),
greedy output through the API equal to `hearth greedy`, 8 concurrent streams equal to each alone
(continuous batching), the prompt cache on a follow-up turn, keep_alive and unloading, LRU
eviction, the memory check, the bounded queue (503), client disconnects, deleting a model while
it generates, over-long prompts, num_ctx changes without reloads, FIM through a TEMPLATE's
.Suffix, OpenAI endpoints, and bad input — each a 4xx JSON error, the server healthy after."""
import http.client
import json
import os
import socket
import threading
import time

from harness import FIXTURES, Checker, hearth_greedy, hearth_logits, tolerance
from serve_util import Server, put_model

MODEL = os.path.join(FIXTURES, "llama-Q8_0.gguf")
MODEL_B = os.path.join(FIXTURES, "qwen3-Q8_0.gguf")
MODEL_Q4 = os.path.join(FIXTURES, "llama-Q4_K_M.gguf")
MODEL_HYBRID = os.path.join(FIXTURES, "qwen35-Q8_0.gguf")
GEMMA = os.path.join(FIXTURES, "gemma3-Q8_0.gguf")
GREEDY = {"temperature": 0, "top_k": 1}


def stream_text(lines, key="response"):
    out = ""
    for l in lines:
        if key == "response":
            out += l.get("response", "")
        else:
            out += l.get("message", {}).get("content", "")
    return out


def wait_for(pred, timeout=15.0):
    t = time.time()
    while time.time() - t < timeout:
        if pred():
            return True
        time.sleep(0.1)
    return False


def main():
    c = Checker("server-inference")
    s = Server(env={"HEARTH_NUM_PARALLEL": "8"})
    try:
        put_model(s.models, "tiny:latest", MODEL)
        put_model(s.models, "other:latest", MODEL_B)

        # Greedy through the API == `hearth greedy` on the same prompt tokens.
        st, r = s.json("POST", "/api/generate", {"model": "tiny", "prompt": "The quick brown fox",
                                                 "stream": False,
                                                 "options": dict(GREEDY, num_predict=12)})
        c.check(st == 200 and r["done"] and r["done_reason"] == "length", f"generate: {st} {r}")
        ctx = r["context"]
        n_prompt = r["prompt_eval_count"]
        c.check(r["eval_count"] == 12 and len(ctx) == n_prompt + 12, f"counts {r}")
        ref = hearth_greedy(MODEL, ctx[:n_prompt], 12)
        c.check(ctx[n_prompt:] == ref, f"API greedy {ctx[n_prompt:]} != hearth greedy {ref}")
        for k in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
            c.check(isinstance(r.get(k), int), f"final chunk lacks {k}")
        # Streaming gives the same text, line by line, ending with a done line.
        st, ct, lines = s.ndjson("/api/generate", {"model": "tiny", "prompt": "The quick brown fox",
                                                   "options": dict(GREEDY, num_predict=12)})
        c.check(st == 200 and ct.startswith("application/x-ndjson"), f"stream ct {ct}")
        c.check(lines[-1]["done"] is True and all(not l["done"] for l in lines[:-1]),
                "only the last line is done")
        c.check(stream_text(lines) == r["response"], f"stream {stream_text(lines)!r} vs "
                f"{r['response']!r}")

        # Chat: template applied (prompt longer than the text), streaming == non-streaming.
        msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]
        st, r1 = s.json("POST", "/api/chat", {"model": "tiny", "messages": msgs, "stream": False,
                                              "options": dict(GREEDY, num_predict=8)})
        c.check(st == 200 and r1["message"]["role"] == "assistant" and r1["done"], f"chat {r1}")
        st, _, lines = s.ndjson("/api/chat", {"model": "tiny", "messages": msgs,
                                              "options": dict(GREEDY, num_predict=8)})
        c.check(stream_text(lines, "message") == r1["message"]["content"], "chat stream text")
        # Follow-up turn: the shared prefix comes from the prompt cache.
        msgs2 = msgs + [{"role": "assistant", "content": r1["message"]["content"]},
                        {"role": "user", "content": "And then?"}]
        st, r2 = s.json("POST", "/api/chat", {"model": "tiny", "messages": msgs2, "stream": False,
                                              "options": dict(GREEDY, num_predict=4)})
        c.check(st == 200 and r2.get("prompt_cached", 0) >= r1["prompt_eval_count"] - 1,
                f"follow-up reused {r2.get('prompt_cached')} of {r1['prompt_eval_count']} tokens")
        # The cache does not change results: the same request on a cold slot gives the same text.
        st, r3 = s.json("POST", "/api/chat", {"model": "tiny", "messages": msgs2, "stream": False,
                                              "options": dict(GREEDY, num_predict=4, num_ctx=2048)})
        c.check(r3["message"]["content"] == r2["message"]["content"],
                f"cached {r2['message']['content']!r} vs cold {r3['message']['content']!r}")
        c.check(r3["load_duration"] == 0, "num_ctx change reloaded the model")

        # A hybrid (Qwen 3.5: DeltaNet state per slot, which cannot be rewound): the follow-up
        # turn continues the slot's state when the new prompt extends everything it holds, and
        # gives the same answer as a cold slot.
        put_model(s.models, "hybrid:latest", MODEL_HYBRID)
        st, h1 = s.json("POST", "/api/chat", {"model": "hybrid", "messages": msgs, "stream": False,
                                              "options": dict(GREEDY, num_predict=8)})
        c.check(st == 200 and h1["done"], f"hybrid chat {h1}")
        hmsgs = msgs + [{"role": "assistant", "content": h1["message"]["content"]},
                        {"role": "user", "content": "And then?"}]
        st, h2 = s.json("POST", "/api/chat", {"model": "hybrid", "messages": hmsgs,
                                              "stream": False, "options": dict(GREEDY, num_predict=6)})
        c.check(st == 200 and h2.get("prompt_cached", 0) == h1["prompt_eval_count"] + 7,
                f"hybrid follow-up reused {h2.get('prompt_cached')} tokens, expected "
                f"{h1['prompt_eval_count']} + 7 generated")
        st, h3 = s.json("POST", "/api/chat", {"model": "hybrid", "messages": hmsgs,
                                              "stream": False,
                                              "options": dict(GREEDY, num_predict=6, num_ctx=2048)})
        c.check(st == 200 and h3["message"]["content"] == h2["message"]["content"],
                f"hybrid cached {h2['message']['content']!r} vs cold {h3['message']['content']!r}")

        # 8 concurrent streams decoded together equal each alone: greedy tokens equal up to the
        # first near-tie of the solo run (batched matmuls sum in another order: float noise), on
        # a Q8_0 and a Q4_K_M model. The prompts differ in length, so prefill and decode mix.
        for fixture, dtype in ((MODEL, "Q8_0"), (MODEL_Q4, "Q4_K_M")):
            name = "conc-" + dtype.lower() + ":latest"
            put_model(s.models, name, fixture)
            prompts = [f"Story {i}: " + "once upon a time " * i for i in range(8)]
            def body(i):
                return {"model": name, "prompt": prompts[i],
                        "options": dict(GREEDY, num_predict=24)}
            def ctx_of(lines):
                return lines[-1]["context"], lines[-1]["prompt_eval_count"]
            alone = [ctx_of(s.ndjson("/api/generate", body(i))[2]) for i in range(8)]
            together = [None] * 8
            def worker(i):
                together[i] = ctx_of(s.ndjson("/api/generate", body(i))[2])
            ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            for i in range(8):
                (solo, n_p), (batched, n_p2) = alone[i], together[i]
                c.check(n_p == n_p2 and batched[:n_p] == solo[:n_p], f"{dtype} stream {i} prompt")
                teacher = hearth_logits(fixture, solo[:-1], all_positions=True)[n_p - 1:]
                c.compare_greedy(f"{dtype} stream {i} batched vs alone", batched[n_p:],
                                 solo[n_p:], teacher, tolerance(dtype))
        # A seed makes sampling reproducible.
        sampled = {"model": "tiny", "prompt": "Once", "raw": True,
                   "options": {"temperature": 0.9, "seed": 42, "num_predict": 24}}
        runs = [stream_text(s.ndjson("/api/generate", sampled)[2]) for _ in range(2)]
        other_seed = dict(sampled, options=dict(sampled["options"], seed=43))
        c.check(runs[0] == runs[1], f"same seed, different text: {runs}")
        c.check(stream_text(s.ndjson("/api/generate", other_seed)[2]) != runs[0],
                "another seed gave the same text")

        # Over-long prompt: shortened from the middle, and the answer says so.
        long_prompt = " ".join(["word"] * 600)
        st, r = s.json("POST", "/api/generate", {"model": "tiny", "prompt": long_prompt, "raw": True,
                                                 "stream": False,
                                                 "options": dict(GREEDY, num_ctx=256,
                                                                 num_predict=4)})
        c.check(st == 200 and r.get("prompt_truncated", 0) > 300 and r["prompt_eval_count"] < 256,
                f"long prompt: {st} {str(r)[:300]}")

        # FIM through a TEMPLATE with .Suffix (Continue.dev's autocomplete path).
        put_model(s.models, "fim:latest", MODEL,
                  template="{{ if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>"
                           "{{ else }}{{ .Prompt }}{{ end }}")
        st, r = s.json("POST", "/api/generate", {"model": "fim", "prompt": "def f(", "suffix":
                                                 "return x", "stream": False,
                                                 "options": dict(GREEDY, num_predict=2)})
        c.check(st == 200, f"fim: {st} {r}")
        st, rr = s.json("POST", "/api/generate", {"model": "fim", "raw": True, "stream": False,
                                                  "prompt": "<PRE> def f( <SUF>return x <MID>",
                                                  "options": dict(GREEDY, num_predict=2)})
        c.check(st == 200 and r["prompt_eval_count"] == rr["prompt_eval_count"] and
                r["response"] == rr["response"], f"FIM prompt != the template's text: {r} {rr}")
        st, r = s.json("POST", "/api/generate", {"model": "tiny", "prompt": "a", "suffix": "b",
                                                 "stream": False})
        c.check(st == 400 and "does not support insert" in r["error"], f"no FIM: {st} {r}")

        # Sliding-window models keep a ring of recent positions: a request sharing only an old
        # prefix with what a slot holds must start over (and still answer correctly).
        put_model(s.models, "gemma:latest", GEMMA)
        words = " ".join(f"w{i}" for i in range(700))
        s.json("POST", "/api/generate", {"model": "gemma", "prompt": words, "raw": True,
                                         "stream": False, "options": dict(GREEDY, num_predict=4)})
        short = " ".join(f"w{i}" for i in range(60)) + " and then"
        st, r = s.json("POST", "/api/generate", {"model": "gemma", "prompt": short,
                                                 "stream": False,
                                                 "options": dict(GREEDY, num_predict=8)})
        n_p = r["prompt_eval_count"]
        c.check(st == 200 and r.get("prompt_cached", 0) == 0, f"old prefix reused: {r}")
        c.check(r["context"][n_p:] == hearth_greedy(GEMMA, r["context"][:n_p], 8),
                "gemma after a wrapped ring != hearth greedy")

        # OpenAI endpoints.
        st, r = s.json("POST", "/v1/chat/completions", {"model": "tiny", "messages": msgs,
                                                        "max_tokens": 8, "temperature": 0})
        c.check(st == 200 and r["object"] == "chat.completion" and
                r["choices"][0]["message"]["content"] == r1["message"]["content"] and
                r["usage"]["completion_tokens"] == 8, f"v1 chat: {r}")
        st, ct, text = s.request("POST", "/v1/chat/completions",
                                 {"model": "tiny", "messages": msgs, "max_tokens": 8,
                                  "temperature": 0, "stream": True,
                                  "stream_options": {"include_usage": True}})
        events = [l[6:] for l in text.split("\n\n") if l.startswith("data: ")]
        c.check(ct.startswith("text/event-stream") and events[-1] == "[DONE]", "SSE ends [DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        sse_text = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks
                           if ch["choices"])
        c.check(sse_text == r1["message"]["content"], f"SSE text {sse_text!r}")
        c.check(chunks[-1]["usage"]["completion_tokens"] == 8, "usage chunk")
        st, r = s.json("POST", "/v1/completions", {"model": "tiny", "prompt": "The quick brown fox",
                                                   "max_tokens": 12, "temperature": 0})
        st2, g = s.json("POST", "/api/generate", {"model": "tiny", "prompt": "The quick brown fox",
                                                  "raw": True, "stream": False,
                                                  "options": dict(GREEDY, num_predict=12)})
        c.check(st == 200 and r["choices"][0]["text"] == g["response"], f"v1 completions {r}")
        st, r = s.json("POST", "/v1/chat/completions", {"model": "nope", "messages": msgs})
        c.check(st == 404 and r["error"]["type"] == "not_found_error", f"v1 404: {r}")

        # Bad input: each a 4xx with a JSON error; the server stays healthy.
        bad = [
            ("/api/generate", b"{not json", 400),
            ("/api/generate", json.dumps({"model": "tiny", "prompt": 5}).encode(), 400),
            ("/api/generate", json.dumps({"model": "tiny", "prompt": "x", "stream": "yes"}).encode(),
             400),
            ("/api/generate", json.dumps({"model": "tiny", "prompt": "x",
                                          "options": {"temperature": "hot"}}).encode(), 400),
            ("/api/generate", json.dumps({"model": "nope", "prompt": "x"}).encode(), 404),
            ("/api/generate", json.dumps({"model": "bad name!", "prompt": "x"}).encode(), 400),
            ("/api/generate", json.dumps({"prompt": "x"}).encode(), 400),
            ("/api/generate", json.dumps({"model": "tiny", "prompt": "x", "raw": True,
                                          "system": "s"}).encode(), 400),
            ("/api/generate", json.dumps({"model": "tiny", "prompt": "x",
                                          "keep_alive": "soon"}).encode(), 400),
            ("/api/chat", json.dumps({"model": "tiny", "messages": "hi"}).encode(), 400),
            ("/api/chat", json.dumps({"model": "tiny", "messages": [{"content": "x"}]}).encode(),
             400),
            ("/api/chat", json.dumps({"model": "tiny", "messages": [],
                                      "format": 7}).encode(), 400),
            ("/v1/chat/completions", json.dumps({"model": "tiny", "messages": []}).encode(), 400),
            # create: bad parameter, unknown base, missing blob, invalid names, bad messages
            ("/api/create", json.dumps({"model": "x", "from": "tiny",
                                        "parameters": {"temperature": "warm"}}).encode(), 400),
            ("/api/create", json.dumps({"model": "x", "from": "nope"}).encode(), 404),
            ("/api/create", json.dumps({"model": "x", "files": {
                "m.gguf": "sha256:" + "0" * 64}}).encode(), 400),
            ("/api/create", json.dumps({"model": "bad name!", "from": "tiny"}).encode(), 400),
            ("/api/create", json.dumps({"model": "x"}).encode(), 400),
            ("/api/create", json.dumps({"model": "x", "from": "tiny", "messages": [
                {"role": "robot", "content": "hi"}]}).encode(), 400),
            ("/api/show", json.dumps({"model": "nope"}).encode(), 404),
        ]
        for path, raw, want in bad:
            st, _, text = s.request("POST", path, raw=raw)
            try:
                err = json.loads(text)["error"]
            except Exception:
                err = None
            c.check(st == want and err, f"{path} {raw[:60]!r}: {st} {text[:120]}")
            c.check(s.alive(), "server alive after bad input")
        c.check("x:latest" not in [m["name"] for m in s.json("GET", "/api/tags")[1]["models"]],
                "a failed create left a model behind")

        # A client that disconnects mid-stream stops its generation and frees its slot.
        conn = socket.create_connection(("127.0.0.1", s.port))
        req = json.dumps({"model": "tiny", "prompt": "Go on and on", "raw": True,
                          "options": dict(GREEDY, num_predict=100000, num_ctx=4096)}).encode()
        conn.sendall(b"POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(req)).encode() + b"\r\n\r\n" + req)
        conn.recv(4096)
        conn.close()
        c.check(wait_for(lambda: "canceled by the client" in s.read_log()),
                "disconnect not noticed (no cancel in the server log)")

        # Delete a model while it generates: the stream completes, the server stays up.
        result = {}
        def gen():
            result["r"] = s.ndjson("/api/generate", {"model": "other", "prompt": "x" * 50,
                                                     "raw": True, "options": {"num_predict": 400}})
        t = threading.Thread(target=gen)
        t.start()
        time.sleep(0.3)
        st, _ = s.json("DELETE", "/api/delete", {"model": "other"})
        t.join()
        c.check(st == 200, f"delete while generating: {st}")
        st, _, lines = result["r"]
        c.check(st == 200 and lines[-1].get("done") is True, "generation survived the delete")
        c.check(s.alive(), "server alive after delete during generation")

        # keep_alive: 0 unloads after the request; empty prompt loads; negative keeps forever.
        st, r = s.json("POST", "/api/generate", {"model": "tiny", "prompt": ""})
        c.check(st == 200 and r["done_reason"] == "load", f"load: {r}")
        st, r = s.json("POST", "/api/generate", {"model": "tiny", "prompt": "", "keep_alive": 0})
        c.check(st == 200 and r["done_reason"] == "unload", f"unload: {r}")
        def loaded():
            return {m["name"]: m for m in s.json("GET", "/api/ps")[1]["models"]}
        c.check(wait_for(lambda: "tiny:latest" not in loaded()), "ps after unload")
        s.json("POST", "/api/chat", {"model": "tiny", "messages": [], "keep_alive": -1})
        ps = loaded()
        c.check("tiny:latest" in ps and ps["tiny:latest"]["expires_at"] > "2100", f"forever: {ps}")
        s.json("POST", "/api/generate", {"model": "tiny", "prompt": "hi", "keep_alive": "1s",
                                         "stream": False, "options": {"num_predict": 1}})
        c.check(wait_for(lambda: "tiny:latest" not in loaded(), 10),
                "keep_alive 1s did not unload")
    finally:
        s.stop()

    # Limits: one loaded model at a time (LRU eviction), the memory check, a bounded queue.
    s = Server(env={"HEARTH_MAX_LOADED_MODELS": "1", "HEARTH_NUM_PARALLEL": "1",
                    "HEARTH_MAX_QUEUE": "1"})
    try:
        put_model(s.models, "a:latest", MODEL)
        put_model(s.models, "b:latest", MODEL_B)
        s.json("POST", "/api/generate", {"model": "a", "prompt": ""})
        s.json("POST", "/api/generate", {"model": "b", "prompt": ""})
        ps = [m["name"] for m in s.json("GET", "/api/ps")[1]["models"]]
        c.check(ps == ["b:latest"], f"max 1 loaded model: {ps}")
        # Busy: one generating, one waiting, the third gets 503.
        conns = []
        for _ in range(2):
            conn = socket.create_connection(("127.0.0.1", s.port))
            # Greedy, so the run is the same every time (a sampled one may end early on EOS).
            req = json.dumps({"model": "b", "prompt": "y", "raw": True,
                              "options": dict(GREEDY, num_predict=100000)}).encode()
            conn.sendall(b"POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Length: " +
                         str(len(req)).encode() + b"\r\n\r\n" + req)
            conns.append(conn)
            time.sleep(0.3)
        st, r = s.json("POST", "/api/generate", {"model": "b", "prompt": "z", "raw": True})
        c.check(st == 503 and "maximum pending requests" in r["error"], f"queue full: {st} {r}")
        for conn in conns:
            conn.close()
        c.check(s.alive(), "alive after 503")
    finally:
        s.stop()

    s = Server(env={"HEARTH_MAX_MEMORY": "1M"})
    try:
        put_model(s.models, "a:latest", MODEL)
        st, r = s.json("POST", "/api/generate", {"model": "a", "prompt": "hi", "stream": False})
        c.check(st == 500 and "requires more system memory" in r["error"], f"memory: {st} {r}")
        c.check(s.alive(), "alive after refused load")
    finally:
        s.stop()
    c.finish()


if __name__ == "__main__":
    main()
