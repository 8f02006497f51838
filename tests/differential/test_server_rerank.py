"""Reranking through the server: /api/rerank, /v1/rerank and llama-server's aliases (/rerank,
/reranking, /v1/reranking) against llama.cpp.

Models: tiny random BERT rerankers from tools/embed/mkbert.py (WordPiece vocabulary):
  rr      `bert.pooling_type = 4`, the RoBERTa head (cls.weight + tanh, cls.output) as llama.cpp's
          converter writes XLMRobertaForSequenceClassification (bge-reranker), F16;
  rr-q8   the same quantized to Q8_0 by `hearth quantize`;
  rr-bert no pooling type, only cls.output (BertForSequenceClassification: llama.cpp's converter
          drops the pooler), F16 - ranked as llama-server --reranking and node-llama-cpp do;
  q3, q3-q8  the qwen3 fixtures (F16, Q8_0) made into Qwen3-Reranker-style models as llama.cpp's
          converter writes them: `qwen3.pooling_type = 4`, labels ["yes", "no"], a 2-row
          `cls.output.weight` (random here; the "yes"/"no" rows of lm_head in a real one) and the
          converter's `tokenizer.chat_template.rerank`: the last token's softmax over the two,
          p(yes) being the score;
and, for the refusals, a mean-pooling BERT embedder and the qwen3 chat fixture.

The reference is llama.cpp through node-llama-cpp's ranking context (tests/differential/
oracle_rank.mjs: rank pooling, the pair [CLS] query [SEP] document as format_prompt_rerank builds
it for this vocabulary); it returns sigmoid(score), which the script undoes to the raw score
llama-server answers. Checked: every score within the tolerance below, the order of the results
the oracle's (documents whose reference scores are closer than twice the tolerance may swap),
usage.prompt_tokens = the oracle's pair lengths summed; the answer's shape (model as requested,
object "list", usage, results sorted, indices), top_n, TEI's `texts` format with return_text,
hearth's return_documents, every alias the same answer, a batch of 32 documents = one call per
document = four concurrent calls (max |diff| <= 1e-5: the same kernels on more rows), an over-long
pair (400 as llama-server, or cut with truncate: true), bad requests in Ollama's and OpenAI's error
shapes, rerank on models without a classifier head, embed and generate on a reranker, and
/api/show's capabilities.

Tolerance: |hearth - llama.cpp| <= 1.5e-2 (F16) and 0.25 (Q8_0) on scores spread over ~1-2. The
score is the classifier's dot product over the [CLS] row, so it carries the hidden state's
difference (F16: up to ~2e-3 per value, see test_bert.py: llama.cpp's flash attention and GELU
round through F16) summed over n_embd values through weights of std 0.5. Measured over 9 seeds x
2 heads x 12 documents: up to 5.2e-3 at F16; at Q8_0 up to 0.116, about what quantization itself
moves llama.cpp's scores from its F16 ones (up to 0.18): those small hidden-state differences put
some activations on the other side of a Q8_0 rounding step (1/127 of the row's largest value), so
the two engines' Q8_0 scores differ by quantization noise. The bounds are ~2.9x and ~2.2x those.
Qwen3 scores are probabilities (a softmax over two small logits): 1e-3 (F16) and 1e-2 (Q8_0)
against measured 1.3e-4 and 3.2e-3.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading

import numpy as np

from harness import FIXTURES, HEARTH
from serve_util import Server, put_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import gguf_io  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MKBERT = os.path.join(ROOT, "tools", "embed", "mkbert.py")
ORACLE_RANK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oracle_rank.mjs")
TOL = {"rr": 1.5e-2, "rr-bert": 1.5e-2, "rr-q8": 0.25, "q3": 1e-3, "q3-q8": 1e-2}
# What llama.cpp's converter writes for Qwen3-Reranker (convert_hf_to_gguf.py, Qwen3Model).
QWEN3_RERANK = ("<|im_start|>system\nJudge whether the Document meets the requirements based on "
                "the Query and the Instruct provided. Note that the answer can only be \"yes\" or "
                "\"no\".<|im_end|>\n<|im_start|>user\n<Instruct>: Given a web search query, "
                "retrieve relevant passages that answer the query\n<Query>: {query}\n<Document>: "
                "{document}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
checks = {"passed": 0, "failed": 0}
worst = {}


def check(ok, what):
    checks["passed" if ok else "failed"] += 1
    if not ok:
        print("FAIL:", what)


QUERY = "quick brown fox"
DOCS = ["the quick brown fox jumps over the lazy dog",
        "hello world",
        "a cat and a dog play in the house",
        "water and fire",
        "good morning, the sun is up and the day is good",
        "The fox is quick; the dog is lazy.",
        "test token model embed sentence vector",
        "night walk by the tree"]


def oracle(path, query, docs):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"query": query, "documents": docs}, f)
    try:
        out = subprocess.run(["node", ORACLE_RANK, path, f.name, "--ctx", "1024"], check=True,
                             capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    return json.loads(out)


def make_models(tmp):
    def mk(name, *args):
        path = os.path.join(tmp, name + ".gguf")
        subprocess.run(["/usr/bin/python3", MKBERT, path, "--dtype", "F16", *args], check=True,
                       stdout=subprocess.DEVNULL)
        return path

    paths = {"rr": mk("rr", "--pooling", "rank", "--seed", "7"),
             "rr-bert": mk("rr-bert", "--pooling", "none", "--head", "bert", "--seed", "8"),
             "bert-mean": mk("bert-mean", "--pooling", "mean", "--seed", "9")}
    paths["rr-q8"] = os.path.join(tmp, "rr-q8.gguf")
    subprocess.run([HEARTH, "quantize", paths["rr"], paths["rr-q8"], "q8_0"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for name, src in (("q3", "qwen3-F16.gguf"), ("q3-q8", "qwen3-Q8_0.gguf")):
        g = gguf_io.read(os.path.join(FIXTURES, src))
        n_embd = g.get("qwen3.embedding_length")
        g.set("qwen3.pooling_type", gguf_io.U32, 4)
        g.set("qwen3.classifier.output_labels", gguf_io.ARR, ["yes", "no"], gguf_io.STR)
        g.set("tokenizer.chat_template.rerank", gguf_io.STR, QWEN3_RERANK)
        w = np.random.default_rng(1).normal(0, 0.02, size=(2, n_embd)).astype("<f4")
        g.tensors.append(gguf_io.Tensor("cls.output.weight", [n_embd, 2], gguf_io.GGML_F32,
                                        w.tobytes()))
        paths[name] = os.path.join(tmp, name + ".gguf")
        gguf_io.write(paths[name], g)
    return paths


def main():
    tmp = tempfile.mkdtemp(prefix="hearth-rerank-")
    paths = make_models(tmp)
    s = Server(env={"HEARTH_NUM_PARALLEL": "1"})
    try:
        for name, path in paths.items():
            put_model(s.models, f"{name}:latest", path)
        put_model(s.models, "chat:latest", os.path.join(FIXTURES, "qwen3-Q8_0.gguf"))

        def rerank(body, path="/v1/rerank"):
            return s.json("POST", path, body)

        # Against llama.cpp: scores, order, token counts.
        for model in ("rr", "rr-q8", "rr-bert", "q3", "q3-q8"):
            ref = oracle(paths[model], QUERY, DOCS)
            st, r = rerank({"model": model, "query": QUERY, "documents": DOCS})
            check(st == 200, f"{model}: {st} {r}")
            if st != 200:
                continue
            check(list(r.keys()) == ["model", "object", "usage", "results"] and
                  r["model"] == model and r["object"] == "list", f"{model}: shape {r}")
            got = {x["index"]: x["relevance_score"] for x in r["results"]}
            check(sorted(got) == list(range(len(DOCS))) and
                  all(list(x.keys()) == ["index", "relevance_score"] for x in r["results"]),
                  f"{model}: indices {r['results']}")
            tol = TOL[model]
            diffs = [abs(got[i] - ref["scores"][i]) for i in range(len(DOCS)) if i in got]
            worst[model] = max(diffs)
            check(max(diffs) <= tol, f"{model}: max |score - llama.cpp| {max(diffs):.2e} > {tol}"
                                     f" ({[got.get(i) for i in range(len(DOCS))]} vs {ref['scores']})")
            scores = [x["relevance_score"] for x in r["results"]]
            check(scores == sorted(scores, reverse=True), f"{model}: not sorted {scores}")
            order = [x["index"] for x in r["results"]]
            ref_order = sorted(range(len(DOCS)), key=lambda i: -ref["scores"][i])
            # Positions where the two orders differ must hold near-ties of the reference.
            bad = [(a, b) for a, b in zip(order, ref_order)
                   if a != b and abs(ref["scores"][a] - ref["scores"][b]) > 2 * tol]
            check(not bad, f"{model}: order {order} vs llama.cpp {ref_order}")
            check(r["usage"]["prompt_tokens"] == r["usage"]["total_tokens"] == sum(ref["lengths"]),
                  f"{model}: usage {r['usage']} vs llama.cpp's pairs {ref['lengths']}")

        # top_n, TEI's format, hearth's return_documents, the aliases.
        st, full = rerank({"model": "rr", "query": QUERY, "documents": DOCS})
        st, r = rerank({"model": "rr", "query": QUERY, "documents": DOCS, "top_n": 3})
        check(st == 200 and r["results"] == full["results"][:3], f"top_n 3: {st} {r}")
        st, r = rerank({"model": "rr", "query": QUERY, "documents": DOCS, "top_n": 0})
        check(st == 200 and r["results"] == [], f"top_n 0: {st} {r}")
        st, r = rerank({"model": "rr", "query": QUERY, "documents": DOCS, "top_n": 100})
        check(st == 200 and r["results"] == full["results"], f"top_n 100: {st} {r}")
        st, r = rerank({"model": "rr", "query": QUERY, "documents": DOCS, "return_documents": True})
        check(st == 200 and all(x["document"] == {"text": DOCS[x["index"]]} for x in r["results"])
              and [x["relevance_score"] for x in r["results"]] ==
              [x["relevance_score"] for x in full["results"]], f"return_documents: {st} {r}")
        st, r = rerank({"model": "rr", "query": QUERY, "texts": DOCS, "return_text": True,
                        "top_n": 2})
        check(st == 200 and isinstance(r, list) and len(r) == 2 and
              [x["index"] for x in r] == [x["index"] for x in full["results"][:2]] and
              all(x["score"] == y["relevance_score"] and x["text"] == DOCS[x["index"]]
                  for x, y in zip(r, full["results"])), f"TEI texts + return_text: {st} {r}")
        st, r = rerank({"model": "rr", "query": QUERY, "texts": DOCS})
        check(st == 200 and isinstance(r, list) and all("text" not in x for x in r),
              f"TEI texts: {st} {r}")
        for path in ("/rerank", "/reranking", "/v1/reranking", "/api/rerank"):
            st, r = rerank({"model": "rr", "query": QUERY, "documents": DOCS}, path)
            check(st == 200 and r == full, f"{path}: {st} {r}")
        st, r = rerank({"model": "rr:latest", "query": QUERY, "documents": DOCS})
        check(st == 200 and r["model"] == "rr:latest", f"model echoed as given: {r.get('model')}")

        # 32 documents in one call = one call per document = four concurrent calls.
        many = [f"document {i}: " + " ".join(["quick", "brown", "fox", "lazy", "dog", "tree"][i % 6:])
                * (1 + i % 4) for i in range(32)]
        st, batch = rerank({"model": "rr", "query": QUERY, "documents": many})
        check(st == 200 and len(batch["results"]) == 32, f"batch of 32: {st}")
        by_index = {x["index"]: x["relevance_score"] for x in batch["results"]}
        single = {}
        for i, d in enumerate(many):
            st1, r1 = rerank({"model": "rr", "query": QUERY, "documents": [d]})
            if st1 == 200:
                single[i] = r1["results"][0]["relevance_score"]
        diff = max(abs(by_index[i] - single[i]) for i in single) if single else 1
        check(len(single) == 32 and diff <= 1e-5, f"batched vs one at a time: max diff {diff}")
        check(sum(rerank({"model": "rr", "query": QUERY, "documents": [d]})[1]["usage"]
                  ["prompt_tokens"] for d in many[:4]) ==
              rerank({"model": "rr", "query": QUERY, "documents": many[:4]})[1]["usage"]
              ["prompt_tokens"], "usage adds up over documents")
        results = {}

        def worker(k):
            results[k] = rerank({"model": "rr", "query": QUERY, "documents": many[k * 8:(k + 1) * 8]})

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cdiff = 0.0
        for k in range(4):
            st, r = results[k]
            check(st == 200 and len(r["results"]) == 8, f"concurrent {k}: {st} {r}")
            for x in r["results"] if st == 200 else []:
                cdiff = max(cdiff, abs(x["relevance_score"] - by_index[k * 8 + x["index"]]))
        check(cdiff <= 1e-5, f"concurrent vs batched: max diff {cdiff}")
        # A decoder's pairs go through the KV cache, several sequences per batch: the same too.
        st, r = rerank({"model": "q3", "query": QUERY, "documents": DOCS})
        q3_batch = {x["index"]: x["relevance_score"] for x in r["results"]} if st == 200 else {}
        q3_diff = max(abs(rerank({"model": "q3", "query": QUERY, "documents": [d]})[1]["results"][0]
                          ["relevance_score"] - q3_batch.get(i, 9)) for i, d in enumerate(DOCS))
        check(q3_diff <= 1e-5, f"q3 batched vs one at a time: max diff {q3_diff}")

        # An over-long pair: 400 as llama-server, or the document cut with truncate: true.
        long_doc = "the quick brown fox " * 300
        st, r = rerank({"model": "rr", "query": QUERY, "documents": ["hello", long_doc]})
        check(st == 400 and "exceeds the available context size (512 tokens)" in
              r["error"]["message"], f"too long: {st} {r}")
        st, r = rerank({"model": "rr", "query": QUERY, "documents": ["hello", long_doc],
                        "truncate": True})
        ok = st == 200 and len(r["results"]) == 2
        check(ok and r["usage"]["prompt_tokens"] == 512 + 6, f"truncate: {st} {r}")
        st, r = rerank({"model": "rr", "query": QUERY, "documents": [long_doc]},
                       path="/api/rerank")
        check(st == 400 and "exceeds" in r.get("error", ""), f"too long, Ollama shape: {st} {r}")

        # The same through a rerank template (the document cut between the template's pieces).
        st, r = rerank({"model": "q3", "query": QUERY, "documents": [long_doc],
                        "options": {"num_ctx": 200}})
        check(st == 400 and "(200 tokens)" in r["error"]["message"], f"q3 too long: {st} {r}")
        st, r = rerank({"model": "q3", "query": QUERY, "documents": [long_doc], "truncate": True,
                        "options": {"num_ctx": 200}})
        check(st == 200 and r["usage"]["prompt_tokens"] == 200, f"q3 truncate: {st} {r}")

        # Bad requests, in both error shapes.
        bad = [({"model": "rr", "documents": DOCS}, '"query" must be provided'),
               ({"model": "rr", "query": 3, "documents": DOCS}, '"query" must be a string'),
               ({"model": "rr", "query": QUERY}, '"documents" must be a non-empty string array'),
               ({"model": "rr", "query": QUERY, "documents": []}, "non-empty string array"),
               ({"model": "rr", "query": QUERY, "documents": [{"text": "a"}]}, "string array"),
               ({"model": "rr", "query": QUERY, "documents": DOCS, "top_n": -1}, "top_n"),
               ({"query": QUERY, "documents": DOCS}, "model is required")]
        for body, msg in bad:
            st, r = rerank(body, "/api/rerank")
            check(st == 400 and isinstance(r.get("error"), str) and msg in r["error"],
                  f"/api/rerank {body}: {st} {r}")
            st, r = rerank(body, "/v1/rerank")
            check(st == 400 and isinstance(r.get("error"), dict) and msg in r["error"]["message"]
                  and r["error"]["type"] == "invalid_request_error", f"/v1/rerank {body}: {st} {r}")
        st, r = rerank({"model": "nope", "query": QUERY, "documents": DOCS})
        check(st == 404, f"unknown model: {st} {r}")
        st, r = s.json("GET", "/v1/rerank")
        check(st == 405, f"GET: {st} {r}")

        # Models without a classifier head cannot rank; a reranker gives no embeddings and no text.
        for model in ("bert-mean", "chat"):
            st, r = rerank({"model": model, "query": QUERY, "documents": DOCS}, "/api/rerank")
            check(st == 400 and "does not support reranking" in r.get("error", ""),
                  f"rerank on {model}: {st} {r}")
        st, r = rerank({"model": "chat", "query": QUERY, "documents": DOCS})
        check(st == 400 and "does not support reranking" in r["error"]["message"],
              f"/v1 rerank on chat: {st} {r}")
        st, r = s.json("POST", "/api/embed", {"model": "rr", "input": "hello"})
        check(st == 400 and "is a reranking model" in r.get("error", ""), f"embed on rr: {st} {r}")
        st, r = s.json("POST", "/v1/embeddings", {"model": "rr-bert", "input": "hello"})
        check(st == 400 and "is a reranking model" in r["error"]["message"],
              f"/v1/embeddings on rr-bert: {st} {r}")
        st, r = s.json("POST", "/api/generate", {"model": "rr", "prompt": "hi", "stream": False})
        check(st == 400 and "does not support generate" in r.get("error", ""), f"generate: {st} {r}")
        st, r = s.json("POST", "/api/embed", {"model": "q3", "input": "hello"})
        check(st == 400 and "is a reranking model" in r.get("error", ""), f"embed on q3: {st} {r}")

        # /api/show: a reranker's capability.
        for model, caps in (("rr", ["rerank"]), ("rr-bert", ["rerank"]),
                            ("bert-mean", ["embedding"])):
            st, r = s.json("POST", "/api/show", {"model": model})
            check(st == 200 and r["capabilities"] == caps, f"show {model}: {r.get('capabilities')}")
        st, r = s.json("POST", "/api/show", {"model": "chat"})
        check(st == 200 and "rerank" not in r["capabilities"], f"show chat: {r.get('capabilities')}")
        st, r = s.json("POST", "/api/show", {"model": "q3"})
        check(st == 200 and "rerank" in r["capabilities"] and "completion" in r["capabilities"] and
              "embedding" not in r["capabilities"], f"show q3: {r.get('capabilities')}")
    finally:
        s.stop()
    total = checks["passed"] + checks["failed"]
    print("max |score - llama.cpp|: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    print(f"server-rerank: {checks['passed']}/{total} checks passed")
    sys.exit(1 if checks["failed"] else 0)


if __name__ == "__main__":
    main()
