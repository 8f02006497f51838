"""Grammar fast-forward (issue #15): where a format's grammar leaves no choice (a schema's keys, a
const, the rest of an enum value), hearth appends those tokens without sampling and feeds them in
one batch. Checked through `hearth serve` on the Qwen 3 fixture (its real 151k vocabulary):
  - answers validate, the log counts the forced tokens (so the path ran), and a forced run is
    never split differently from what the tokenizer makes of its text;
  - the forced tokens' cache entries are right: in a greedy answer every sampled token is the
    likeliest fitting one by `hearth logits` over the whole sequence from scratch;
  - with logprobs requested nothing is forced (forced tokens have none), and the answer still
    validates."""
import json
import os
import re
import sys

import numpy as np

from harness import FIXTURES, Checker, hearth_logits
from serve_util import Server, put_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import gguf_io as G  # noqa: E402

MODEL = os.path.join(FIXTURES, "qwen3-Q8_0.gguf")
SCHEMA = {
    "type": "object",
    "properties": {
        "a_rather_long_property_name": {"type": "string", "maxLength": 6},
        "status_of_the_request": {"enum": ["accepted_for_processing", "rejected_outright"]},
        "constant_part": {"const": "this text is fixed by the schema"},
    },
    "required": ["a_rather_long_property_name", "status_of_the_request", "constant_part"],
    "additionalProperties": False,
}


def valid(text):
    v = json.loads(text)
    return (set(v) == set(SCHEMA["required"]) and isinstance(v["a_rather_long_property_name"], str)
            and len(v["a_rather_long_property_name"]) <= 6
            and v["status_of_the_request"] in SCHEMA["properties"]["status_of_the_request"]["enum"]
            and v["constant_part"] == "this text is fixed by the schema")


def byte_decoder():
    """GPT-2 byte-level BPE: the printable character standing for each byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_bytes(model):
    """Each token's bytes (None for control tokens)."""
    g = G.read(model)
    dec = byte_decoder()
    types = g.get("tokenizer.ggml.token_type")
    out = []
    for i, tok in enumerate(g.get("tokenizer.ggml.tokens")):
        if types[i] != 1:
            out.append(None)
        else:
            out.append(bytes(dec[ch] for ch in tok))
    return out


def forced_counts(log):
    return [int(x) for x in re.findall(r"full masks, (\d+) tokens forced", log)]


def main():
    c = Checker("test_server_forced")
    s = Server(env={"HEARTH_NUM_PARALLEL": "1", "HEARTH_LOG_FORCED": "1"})
    try:
        put_model(s.models, "q:latest", MODEL)
        runs = []
        for seed, temp in [(1, 0.0), (2, 0.9), (3, 0.9)]:
            st, r = s.json("POST", "/api/generate", {
                "model": "q", "prompt": "Fill the form.", "format": SCHEMA, "stream": False,
                "think": False, "options": {"temperature": temp, "seed": seed, "num_predict": 400}})
            c.check(st == 200, f"seed {seed}: status {st} {r}")
            if st != 200:
                continue
            c.check(r["done_reason"] == "stop", f"seed {seed}: done_reason {r['done_reason']}")
            try:
                ok = valid(r["response"])
            except ValueError:
                ok = False
            c.check(ok, f"seed {seed}: answer does not validate: {r['response']!r}")
            runs.append(r)
            if seed == 1:
                first_log = s.read_log()
        counts = forced_counts(s.read_log())
        print("forced tokens per request:", counts)
        c.check(len(counts) == 3 and all(n >= 10 for n in counts),
                f"expected >= 10 forced tokens in each answer, log says {counts}")

        # The greedy answer against the model computed from scratch: at every sampled position the
        # token is the likeliest of those that fit the answer's text from there on (every such
        # token is one the grammar allows, since the text is a valid answer), by `hearth logits`
        # over the whole sequence. Forced positions may differ (their tokenization is the
        # tokenizer's, not the model's choice); if the forced tokens' cache entries were wrong,
        # the sampled positions after them would disagree.
        r0 = runs[0]
        ctx, n_prompt = r0["context"], r0["prompt_eval_count"]
        gen = ctx[n_prompt:]
        vocab = token_bytes(MODEL)
        vocab_ids = {}
        for i, b in enumerate(vocab):
            if b is not None:
                vocab_ids.setdefault(b, i)
        forced_at = [int(i) for i in re.findall(r"forced token \d+ at (\d+)", first_log)]
        rows = hearth_logits(MODEL, ctx[:-1], all_positions=True)
        agree, checked, choices = 0, 0, 0
        for g, t in enumerate(gen):
            if vocab[t] is None or g in forced_at:  # end of generation; not sampled
                continue
            rest = b"".join(vocab[x] for x in gen[g:] if vocab[x] is not None)
            row = rows[n_prompt + g - 1]
            fits = [vocab_ids[rest[:k]] for k in range(1, min(len(rest), 64) + 1)
                    if rest[:k] in vocab_ids]
            best = max(float(row[x]) for x in fits)
            checked += 1
            choices += len(fits) > 1
            ok = float(row[t]) >= best - 1e-3
            agree += ok
            if not ok:
                print(f"  position {g}: token {t} logit {row[t]:.4f}, a fitting token has {best:.4f}")
        print(f"greedy answer: {len(gen)} tokens, {len(forced_at)} forced; of the {checked} "
              f"sampled ({choices} with a choice of fitting tokens) {agree} are the likeliest")
        c.check(len(forced_at) == counts[0], f"forced positions {forced_at} vs count {counts[0]}")
        c.check(checked > 0 and choices >= 5 and agree == checked,
                f"{checked - agree} sampled tokens are not the model's choice from scratch")

        # logprobs: every token sampled, none forced.
        st, r = s.json("POST", "/api/generate", {
            "model": "q", "prompt": "Fill the form.", "format": SCHEMA, "stream": False,
            "think": False, "logprobs": True,
            "options": {"temperature": 0.9, "seed": 4, "num_predict": 400}})
        c.check(st == 200 and valid(r["response"]), f"with logprobs: {st} {r.get('response')!r}")
        c.check(len(r.get("logprobs", [])) == r["eval_count"],
                f"logprobs for {len(r.get('logprobs', []))} of {r['eval_count']} tokens")
        counts = forced_counts(s.read_log())
        c.check(counts[-1] == 0, f"tokens forced with logprobs requested: {counts[-1]}")
    finally:
        s.stop()
    c.finish()


if __name__ == "__main__":
    main()
