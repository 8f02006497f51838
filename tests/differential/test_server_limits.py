"""Hostile or broken input to a running server. Request bodies that nest JSON deeply: a `hearth serve` with a real model in its store answers
400 naming the limit, for the body itself and for the OpenAI tool-call arguments string, and keeps
serving. Before the depth limit, a 120 KB /api/chat body with deeply nested tool-call arguments
killed the server (segmentation fault: stack exhaustion while the value was copied). A TEMPLATE
that does not parse is refused at /api/create."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import FIXTURES, Checker  # noqa: E402
from serve_util import Server  # noqa: E402

DEPTH = 20000


def main():
    c = Checker("server_limits")
    srv = Server()
    try:
        st, body = srv.json("POST", "/api/create",
                            {"model": "t", "from": os.path.join(FIXTURES, "qwen3-F16.gguf"),
                             "stream": False})
        c.check(st == 200, f"create: {st} {body}")
        deep_obj = '{"a":' * DEPTH + "1" + "}" * DEPTH
        deep_arr = "[" * DEPTH + "]" * DEPTH
        cases = {
            "chat tool_calls arguments": ("/api/chat", '{"model":"t","stream":false,'
                                          '"options":{"num_predict":1},"messages":[{"role":"user",'
                                          '"content":"hi"},{"role":"assistant","content":"",'
                                          '"tool_calls":[{"function":{"name":"f","arguments":'
                                          + deep_obj + "}}]}]}"),
            "chat tools schema": ("/api/chat", '{"model":"t","stream":false,"messages":[{"role":'
                                  '"user","content":"hi"}],"tools":[{"type":"function","function":'
                                  '{"name":"f","parameters":' + deep_obj + "}}]}"),
            "generate options": ("/api/generate", '{"model":"t","stream":false,"prompt":"hi",'
                                 '"options":{"stop":' + deep_arr + "}}"),
            "openai tools": ("/v1/chat/completions", '{"model":"t","max_tokens":1,"messages":'
                             '[{"role":"user","content":"hi"}],"tools":[{"type":"function",'
                             '"function":{"name":"f","parameters":' + deep_obj + "}}]}"),
        }
        for name, (path, raw) in cases.items():
            st, _, text = srv.request("POST", path, raw=raw, timeout=30)
            c.check(st == 400 and "nested deeper than" in text, f"{name}: {st} {text[:200]}")
        # The OpenAI API sends tool-call arguments as a JSON string: nested inside the string.
        args = json.dumps(json.loads("[" * 50 + "]" * 50))  # fine: 50 levels
        deep_args = '{"a":' * 2000 + "1" + "}" * 2000
        for arguments, want in ((args, 200), (deep_args, 400)):
            st, body = srv.json("POST", "/v1/chat/completions", {
                "model": "t", "max_tokens": 1,
                "messages": [{"role": "user", "content": "hi"},
                             {"role": "assistant", "content": None, "tool_calls": [
                                 {"id": "c1", "type": "function",
                                  "function": {"name": "f", "arguments": arguments}}]},
                             {"role": "tool", "tool_call_id": "c1", "content": "ok"}]})
            c.check(st == want, f"openai arguments string ({len(arguments)} bytes): {st} {body}")
        # A TEMPLATE that does not parse is refused at create (it used to be stored, and then
        # every chat with the model failed); a good one is kept.
        st, body = srv.json("POST", "/api/create", {"model": "bad", "from": "t", "stream": False,
                                                    "template": "{{ .Prompt "})
        c.check(st == 400 and "TEMPLATE does not parse" in str(body), f"bad template: {st} {body}")
        st, body = srv.json("GET", "/api/tags")
        names = [m["name"] for m in body.get("models", [])] if isinstance(body, dict) else []
        c.check(st == 200 and not any(n.startswith("bad") for n in names), f"tags: {names}")
        st, body = srv.json("POST", "/api/create", {"model": "good", "from": "t", "stream": False,
                                                    "template": "{{ .Prompt }}"})
        c.check(st == 200, f"good template: {st} {body}")
        st, body = srv.json("POST", "/api/generate", {"model": "good", "prompt": "hi",
                                                      "stream": False,
                                                      "options": {"num_predict": 1}})
        c.check(st == 200, f"generate with the good template: {st} {str(body)[:200]}")
        st, body = srv.json("GET", "/api/version")
        c.check(st == 200, f"server alive after the deep bodies: {st} {body}")
        c.check(srv.proc.poll() is None, "server process still running")
    finally:
        srv.stop()
    c.finish()


if __name__ == "__main__":
    main()
