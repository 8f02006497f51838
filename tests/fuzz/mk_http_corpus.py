#!/usr/bin/env python3
"""Writes fuzz_http's seed corpus (tests/fuzz/corpus/http/): small realistic requests for every
route of src/server/api.cpp, several per file where one depends on another (create, then show,
generate and delete), and a few malformed ones. Model names are those of the fuzzed store
(tests/fuzz/http_harness.h: "tiny" = qwen2-Q4_K_M.gguf, "tiny-tmpl" = the same with a Go template
and every Modelfile layer).

usage: mk_http_corpus.py [OUT_DIR]
"""
import hashlib
import json
import os
import sys

FIX = "sha256:6c7e64dfc7bcbede2b56df876bb61c3579b4ed416095f7d42be3845e9dce0727"  # qwen2-Q4_K_M
EMPTY = "sha256:" + hashlib.sha256(b"").hexdigest()
HELLO = "sha256:" + hashlib.sha256(b"hello").hexdigest()


def req(method, path, body=None, headers=None, version="1.1"):
    h = [f"{method} {path} HTTP/{version}", "Host: localhost:11434"]
    b = b""
    if body is not None:
        if isinstance(body, bytes):
            b = body
        elif isinstance(body, str):
            b = body.encode()
        else:
            b = json.dumps(body).encode()
        h.append("Content-Type: application/json")
        h.append(f"Content-Length: {len(b)}")
    for k, v in (headers or {}).items():
        h.append(f"{k}: {v}")
    return ("\r\n".join(h) + "\r\n\r\n").encode() + b


tool = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
seeds = {
 "root-version-tags": req("GET", "/") + req("HEAD", "/") + req("GET", "/api/version") + req("GET", "/api/tags"),
 "show": req("POST", "/api/show", {"model": "tiny-tmpl", "verbose": True}) + req("POST", "/api/show", {"name": "tiny"}),
 "generate-stream": req("POST", "/api/generate", {"model": "tiny", "prompt": "Why is the sky blue?",
     "options": {"num_predict": 4, "temperature": 0, "seed": 1}}),
 "generate-raw": req("POST", "/api/generate", {"model": "tiny", "prompt": "hello", "raw": True, "stream": False,
     "keep_alive": "5m", "options": {"num_predict": 3, "top_k": 1}}),
 "generate-load-unload": req("POST", "/api/generate", {"model": "tiny"}) + req("GET", "/api/ps")
     + req("POST", "/api/generate", {"model": "tiny", "keep_alive": 0}),
 "generate-options": req("POST", "/api/generate", {"model": "tiny-tmpl", "prompt": "x", "suffix": "y",
     "system": "s", "template": "{{ .System }} {{ .Prompt }}", "context": [1, 2, 3], "format": "json",
     "think": False, "stream": False, "options": {"num_ctx": 64, "num_predict": 2, "stop": ["\n"],
     "repeat_penalty": 1.1, "min_p": 0.05, "num_keep": 2}}),
 "chat-tools": req("POST", "/api/chat", {"model": "tiny", "stream": False, "tools": [tool],
     "messages": [{"role": "system", "content": "You call tools."},
                  {"role": "user", "content": "Weather in Paris?"}], "options": {"num_predict": 4}}),
 "chat-history-format": req("POST", "/api/chat", {"model": "tiny", "think": "low",
     "format": {"type": "object", "properties": {"temp": {"type": "number"}}},
     "messages": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather",
                      "arguments": {"city": "Paris"}}}]},
                  {"role": "tool", "content": "21 C", "tool_name": "get_weather"},
                  {"role": "user", "content": "And tomorrow?"}],
     "tools": [tool], "keep_alive": "1h30m", "options": {"num_predict": 3}}),
 "chat-gotmpl": req("POST", "/api/chat", {"model": "tiny-tmpl",
     "messages": [{"role": "user", "content": "hi there"}]}),
 "create-show-generate-delete": req("POST", "/api/create", {"model": "mine", "from": "tiny",
     "template": "{{ .System }}{{ .Prompt }}", "system": "be brief",
     "parameters": {"num_ctx": 64, "stop": ["a", "b"], "temperature": 0.5, "num_predict": 2},
     "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
     "license": ["MIT", "Apache-2.0"]})
     + req("POST", "/api/show", {"model": "mine"}) + req("POST", "/api/generate", {"model": "mine", "prompt": "go"})
     + req("DELETE", "/api/delete", {"model": "mine"}) + req("POST", "/api/show", {"model": "mine"}),
 "create-files": req("POST", "/api/create", {"model": "me/fromblob:v1", "files": {"model.gguf": FIX},
     "stream": False}) + req("GET", "/api/tags"),
 "create-errors": req("POST", "/api/create", {"model": "q", "from": "tiny", "quantize": "q8_0"})
     + req("POST", "/api/create", {"model": "t", "from": "tiny", "template": "{{ .Prompt"})
     + req("POST", "/api/create", {"model": "t", "files": {"a.txt": EMPTY}})
     + req("POST", "/api/create", {"model": "t", "from": "nope"}),
 "copy-delete": req("POST", "/api/copy", {"source": "tiny", "destination": "copy/of-tiny:v1"})
     + req("GET", "/v1/models") + req("DELETE", "/api/delete", {"model": "copy/of-tiny:v1"})
     + req("POST", "/api/show", {"model": "copy/of-tiny:v1"}),
 "delete-base": req("DELETE", "/api/delete", {"name": "tiny"}) + req("GET", "/api/tags")
     + req("POST", "/api/chat", {"model": "tiny-tmpl", "messages": [{"role": "user", "content": "x"}]}),
 # An answer before the body (bad digest, blob already present, too large) closes the
 # connection: those come last.
 "blobs": req("HEAD", f"/api/blobs/{FIX}") + req("HEAD", "/api/blobs/sha256:" + "0" * 64)
     + req("POST", f"/api/blobs/{HELLO}", b"hello") + req("POST", f"/api/blobs/{EMPTY}", b"not empty")
     + req("POST", f"/api/blobs/{EMPTY}", b"") + req("POST", "/api/blobs/sha256:xyz", b"x"),
 "blobs-present": req("POST", f"/api/blobs/{FIX}", b"GGUF"),
 "blobs-too-large": b"POST /api/blobs/" + HELLO.encode()
     + b" HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999999999999\r\n\r\nhello",
 # The access policy of a loopback listener (plus the origin pattern https://*.example.com).
 "access-origins": req("GET", "/api/tags", headers={"Origin": "http://localhost:3000"})
     + req("OPTIONS", "/api/chat", headers={"Origin": "https://app.example.com",
                                             "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "content-type"})
     + req("POST", "/api/show", {"model": "tiny"}, headers={"Origin": "vscode-webview://x"})
     + req("GET", "/api/version", headers={"Origin": "https://evil.test"}),
 "access-host": b"GET / HTTP/1.1\r\nHost: rebind.attacker.test:11434\r\n\r\n",
 "blobs-chunked": (f"POST /api/blobs/{HELLO} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     "2\r\nhe\r\n3;ext=1\r\nllo\r\n0\r\n\r\n").encode()
     + req("POST", "/api/create", {"model": "h", "files": {"hello.bin": HELLO}}),
 "embed": req("POST", "/api/embed", {"model": "tiny", "input": "hi"})
     + req("POST", "/api/embeddings", {"model": "tiny", "prompt": "hi"})
     + req("POST", "/v1/embeddings", {"model": "tiny", "input": ["a", "b"]}),
 "v1-models": req("GET", "/v1/models") + req("GET", "/v1/models/tiny") + req("GET", "/v1/models/nope:latest"),
 "v1-chat-stream": req("POST", "/v1/chat/completions", {"model": "tiny", "stream": True,
     "stream_options": {"include_usage": True}, "max_tokens": 4, "temperature": 0, "seed": 3, "stop": "\n",
     "tools": [tool], "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]}),
 "v1-chat-toolcall": req("POST", "/v1/chat/completions", {"model": "tiny", "max_completion_tokens": 3,
     "messages": [{"role": "user", "content": "Weather?"},
                  {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                      "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]}),
 "v1-completions": req("POST", "/v1/completions", {"model": "tiny", "prompt": "Once upon", "max_tokens": 4,
     "stream": False}) + req("POST", "/v1/completions", {"model": "tiny", "prompt": "def f(", "suffix": "return 1",
     "max_tokens": 2, "stream": True, "stream_options": {"include_usage": True}}),
 "bad-bodies": req("POST", "/api/chat", "{\"model\": ") + req("POST", "/api/generate", "[1,2]")
     + req("POST", "/api/show", "") + req("POST", "/api/generate", "[" * 200 + "]" * 200)
     + req("POST", "/api/chat", {"model": 7, "messages": "hi", "stream": "yes"})
     + req("POST", "/api/generate", {"model": "tiny", "prompt": "x", "options": {"num_ctx": "big"}})
     + req("POST", "/api/generate", {"model": "tiny", "prompt": "x", "keep_alive": "5 parsecs"})
     + req("POST", "/api/generate", {"model": "NOT A NAME!", "prompt": "x"}),
 "bad-methods-paths": req("GET", "/api/chat") + req("PUT", "/api/blobs/" + HELLO, b"x")
     + req("GET", "/nope?x=1") + req("POST", "/api/tags", {}) + req("DELETE", "/api/copy"),
 "http10-close": req("GET", "/api/version", version="1.0") + req("GET", "/api/tags"),
 "too-large": b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{}",
 "bad-header": b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
 "keepalive-close": req("GET", "/api/ps", headers={"Connection": "close"}) + req("GET", "/"),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "corpus", "http")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
