"""Malformed model files must fail the one request, never the server. Copies of small fixtures
are rewritten here (a GGUF metadata editor, below) with the defects real files have: invalid UTF-8
in metadata strings, keys, tokens and the chat template; byte tokens that are not <0xXX>; an
empty token; special-token ids that are negative 64-bit values; a vocabulary larger than the
embedding; score/type arrays of the wrong length; hostile chat templates; a truncated file. Each
is created through /api/create (from = path), shown (/api/show, verbose too; /api/tags;
`hearth show`), and run through /api/generate, /api/chat and /v1/chat/completions, streaming and
not; the CLI's tokenize/detokenize/render read them too. Every answer must be well-formed JSON
(invalid UTF-8 replaced) with 2xx or a clear 4xx/5xx error, and the server must keep serving.

Before the fixes, three of these killed `hearth serve`: an invalid-UTF-8 general.architecture
(json type_error 316 thrown on the /api/create thread: std::terminate), a byte token "<0xZZ>"
decoded on the runner thread (std::stoi threw: std::terminate), and a special-token id of
-(2^32)+10^9 (wrapped into int32 10^9: an out-of-bounds write at load, SIGSEGV); a chat template
computing INT64_MIN % -1 killed it with SIGFPE."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import FIXTURES, HEARTH, Checker  # noqa: E402
from serve_util import Server  # noqa: E402

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
        U64: "<Q", I64: "<q", F64: "<d"}


class Gguf:
    """A GGUF file as editable metadata (key -> (type, value); strings are bytes, arrays are
    (element type, list)) plus its tensor infos and data, which are kept byte for byte."""

    def __init__(self, path):
        with open(path, "rb") as f:
            b = f.read()
        assert b[:4] == b"GGUF"
        _, n_tensors, n_kv = struct.unpack_from("<IQQ", b, 4)

        def rstr(p):
            (n,) = struct.unpack_from("<Q", b, p)
            return b[p + 8:p + 8 + n], p + 8 + n

        def rval(t, p):
            if t == STR:
                return rstr(p)
            if t == ARR:
                et, cnt = struct.unpack_from("<IQ", b, p)
                p += 12
                out = []
                for _ in range(cnt):
                    v, p = rval(et, p)
                    out.append(v)
                return (et, out), p
            return struct.unpack_from(_FMT[t], b, p)[0], p + struct.calcsize(_FMT[t])

        p = 24
        self.kv = {}
        for _ in range(n_kv):
            k, p = rstr(p)
            (t,) = struct.unpack_from("<I", b, p)
            v, p = rval(t, p + 4)
            self.kv[k] = (t, v)
        start = p
        for _ in range(n_tensors):
            _, p = rstr(p)
            (nd,) = struct.unpack_from("<I", b, p)
            p += 4 + 8 * nd + 4 + 8
        self.n_tensors = n_tensors
        self.tensor_infos = b[start:p]
        self.align = self.kv.get(b"general.alignment", (U32, 32))[1]
        self.data = b[(p + self.align - 1) // self.align * self.align:]

    def get(self, key):
        return self.kv[key.encode() if isinstance(key, str) else key][1]

    def set(self, key, t, v):
        self.kv[key.encode() if isinstance(key, str) else key] = (t, v)

    def write(self, path):
        def wstr(s):
            return struct.pack("<Q", len(s)) + s

        def wval(t, v):
            if t == STR:
                return wstr(v)
            if t == ARR:
                return struct.pack("<IQ", v[0], len(v[1])) + b"".join(wval(v[0], x) for x in v[1])
            return struct.pack(_FMT[t], v)

        head = b"GGUF" + struct.pack("<IQQ", 3, self.n_tensors, len(self.kv))
        head += b"".join(wstr(k) + struct.pack("<I", t) + wval(t, v) for k, (t, v) in self.kv.items())
        head += self.tensor_infos
        head += b"\0" * (-len(head) % self.align)
        with open(path, "wb") as f:
            f.write(head + self.data)


GEMMA = "gemma3-Q4_K_M.gguf"  # SentencePiece vocabulary with <0x00>..<0xFF> at ids 238..493
QWEN = "qwen2-Q4_K_M.gguf"  # byte-level BPE, 4110 embedding rows


def names_utf8(g):
    g.set("general.name", STR, b"n\xff\xfe")
    g.set("general.description", STR, b"\x80lone \xe2\x82 cut \xed\xa0\x80 surrogate")
    g.set(b"key\xff.odd", STR, b"v\xc0\xaf")
    g.set("tokenizer.chat_template", STR,
          b"\xff{{ bos_token }}{% for m in messages %}\xfe{{ m['content'] }}\x80{% endfor %}")
    toks = g.get("tokenizer.ggml.tokens")[1]
    for i in range(500, 4096):  # every ordinary token: whatever is generated is invalid UTF-8
        toks[i] = b"\xff" + toks[i][:2] + b"\x80"


def arch_utf8(g):
    g.set("general.architecture", STR, b"gemma3\xff")


def byte_tokens(g):
    toks = g.get("tokenizer.ggml.tokens")[1]
    for i, t in zip(range(238, 244), (b"<0xZZ>", b"<0x>", b"<0xG1>", b"<0x\xff\xfe>", b"<0x 4>", b"")):
        toks[i] = t


def special_ids(g):
    g.set("tokenizer.ggml.eos_token_id", I64, -(2 ** 32) + 10 ** 9)
    g.set("tokenizer.ggml.bos_token_id", I64, -(2 ** 32) + 5000)
    g.set("tokenizer.ggml.padding_token_id", I64, -(2 ** 63))


def vocab_larger(g):  # one more token than the embedding has rows
    g.get("tokenizer.ggml.tokens")[1].append(b"ZQZQ")
    g.get("tokenizer.ggml.token_type")[1].append(4)  # user-defined: "ZQZQ" in a prompt is it


def scores_short(g):
    g.get("tokenizer.ggml.scores")[1].pop()


def types_short(g):
    g.get("tokenizer.ggml.token_type")[1].pop()


def tokens_not_strings(g):
    g.set("tokenizer.ggml.tokens", ARR, (I32, [1, 2, 3]))


def template(src):
    return lambda g: g.set("tokenizer.chat_template", STR, src.encode("utf-8", "surrogateescape"))


MAX, MIN = "9223372036854775807", "(-9223372036854775807 - 1)"
DAG = "{% set ns = namespace(x=[]) %}{% for i in range(200) %}{% set ns.x = [ns.x, ns.x] %}" \
      "{% endfor %}"
# name: (fixture, edit, inference: True = answers 200, False = a 4xx/5xx error, None = either)
CASES = {
    "names-utf8": (GEMMA, names_utf8, True),
    "arch-utf8": (GEMMA, arch_utf8, False),
    "byte-tokens": (GEMMA, byte_tokens, True),
    "special-ids": (GEMMA, special_ids, True),
    "vocab-larger": (QWEN, vocab_larger, True),
    "scores-short": (GEMMA, scores_short, False),
    "types-short": (QWEN, types_short, False),
    "tokens-not-strings": (QWEN, tokens_not_strings, False),
    "tmpl-modulo": (QWEN, template("{{ " + MIN + " % -1 }}{{ messages[0]['content'] }}"), True),
    "tmpl-slice": (QWEN, template("{{ 'abc'[1::" + MAX + "] }}{{ [1, 2][1::" + MAX + "] }}"), True),
    "tmpl-recursion": (QWEN, template("{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}"), False),
    "tmpl-tojson-indent": (QWEN, template("{{ messages | tojson(indent=100000000) }}"), None),
    "tmpl-dag": (QWEN, template(DAG + "{{ ns.x }}"), False),
    "tmpl-raise": (QWEN, template("{{ raise_exception('no \udcff') }}"), False),
    "tmpl-unclosed": (QWEN, template("{% for m in messages %}"), False),
}


def valid_json_body(text):
    """The body parses (NDJSON line by line, SSE by `data:` line) and has no raw invalid UTF-8."""
    raw = text.encode("utf-8", "surrogateescape")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    try:
        for line in text.splitlines():
            line = line[len("data: "):] if line.startswith("data: ") else line
            if line.strip() and line.strip() != "[DONE]":
                json.loads(line)
        return True
    except json.JSONDecodeError:
        return False


def main():
    c = Checker("server_badfiles")
    work = tempfile.mkdtemp(prefix="hearth-badfiles-")
    paths = {}
    for name, (base, edit, _) in CASES.items():
        g = Gguf(os.path.join(FIXTURES, base))
        edit(g)
        paths[name] = os.path.join(work, name + ".gguf")
        g.write(paths[name])
    truncated = os.path.join(work, "truncated.gguf")
    with open(os.path.join(FIXTURES, QWEN), "rb") as f, open(truncated, "wb") as out:
        out.write(f.read(100000))

    srv = Server()

    def stop(srv):
        try:
            srv.stop()
        except AssertionError as e:  # exit status or sanitizer report
            c.check(False, str(e))

    def request(label, method, path, body=None):
        try:
            st, _, text = srv.request(method, path, body, timeout=120)
        except Exception as e:  # noqa: BLE001 - a dropped connection is what is being tested
            c.check(False, f"{label}: {method} {path}: {e!r}")
            return 0, ""
        c.check(valid_json_body(text), f"{label}: {path}: not valid JSON: {text[:200]!r}")
        c.check(srv.proc.poll() is None, f"{label}: {path}: the server died")
        return st, text

    try:
        st, text = request("truncated", "POST", "/api/create",
                           {"model": "truncated", "from": truncated, "stream": False})
        c.check(st == 400 and "gguf" in text, f"truncated: create {st} {text[:200]}")
        chat = {"messages": [{"role": "user", "content": "hi ZQZQ"}],
                "options": {"num_predict": 4}}
        for name, (_, _, works) in CASES.items():
            if srv.proc.poll() is not None:  # record the crash, go on with the next case
                stop(srv)
                srv = Server()
            env = dict(os.environ, HEARTH_HOST=f"127.0.0.1:{srv.port}")
            m = {"model": name}
            st, text = request(name, "POST", "/api/create", {**m, "from": paths[name],
                                                             "stream": False})
            c.check(st == 200, f"{name}: create {st} {text[:200]}")
            st, text = request(name, "POST", "/api/show", m)
            c.check(st == 200, f"{name}: show {st} {text[:200]}")
            st, text = request(name, "POST", "/api/show", {**m, "verbose": True})
            c.check(st == 200, f"{name}: show verbose {st} {text[:200]}")
            p = subprocess.run([HEARTH, "show", name], env=env, capture_output=True, timeout=60)
            c.check(p.returncode == 0, f"{name}: hearth show: {p.returncode} {p.stderr[-300:]!r}")
            requests = [
                ("/api/generate", {**m, "prompt": "hi ZQZQ", "stream": False,
                                   "context": list(range(236, 246)) + [5000, 99999],
                                   "options": {"num_predict": 4}}),
                ("/api/generate", {**m, "prompt": "hi", "options": {"num_predict": 4}}),
                ("/api/chat", {**m, **chat, "stream": False}),
                ("/api/chat", {**m, **chat}),
                ("/v1/chat/completions", {**m, **chat, "max_tokens": 4}),
                ("/v1/chat/completions", {**m, **chat, "max_tokens": 4, "stream": True})]
            if name.startswith("tmpl-"):  # the template is what is tested: two are enough
                requests = requests[2:3] + requests[5:]
            for path, body in requests:
                st, text = request(name, "POST", path, body)
                # A stream that has begun carries a failure as its last line.
                lines = text.splitlines()
                failed = st >= 400 or not lines or '"error"' in lines[-1]
                if works is None:
                    c.check(not failed or '"error"' in text, f"{name}: {path}: {st} {text[:300]}")
                elif works:
                    c.check(not failed or (name == "vocab-larger" and "vocabulary" in text),
                            f"{name}: {path}: {st} {text[:300]}")
                else:
                    c.check(failed and '"error"' in text, f"{name}: {path}: {st} {text[:300]}")
            st, text = request(name, "GET", "/api/tags")
            c.check(st == 200 and f'"{name}:latest"' in text, f"{name}: tags {st}")
        # The CLI's local readers of the same files.
        for args in (["detokenize", "-m", paths["byte-tokens"], "--tokens", "238,239,240,241,243"],
                     ["tokenize", "-m", paths["byte-tokens"], "--text", "<0xZZ> a"],
                     ["detokenize", "-m", paths["names-utf8"], "--tokens", "600,601"],
                     ["render", "-m", paths["tmpl-modulo"], "--messages",
                      '[{"role":"user","content":"x"}]'],
                     ["render", "-m", paths["names-utf8"], "--messages",
                      '[{"role":"user","content":"x"}]']):
            p = subprocess.run([HEARTH] + args, capture_output=True, timeout=60)
            c.check(p.returncode == 0, f"hearth {' '.join(args[:1])}: {p.returncode} "
                                       f"{p.stderr[-300:]!r}")
        # Still serving: a good model answers after all of the above.
        if srv.proc.poll() is not None:
            stop(srv)
            srv = Server()
        st, text = request("good", "POST", "/api/create", {"model": "good", "stream": False,
                                                           "from": os.path.join(FIXTURES, QWEN)})
        st, text = request("good", "POST", "/api/generate", {"model": "good", "prompt": "hi",
                                                             "stream": False,
                                                             "options": {"num_predict": 2}})
        c.check(st == 200 and '"done":true' in text, f"good model after the bad ones: {st}")
    finally:
        stop(srv)
        shutil.rmtree(work, ignore_errors=True)
    c.finish()


if __name__ == "__main__":
    main()
