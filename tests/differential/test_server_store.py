"""`hearth serve` on loopback, store endpoints (issue #4 groundwork): liveness and version, tags,
copy and delete with Ollama's status codes and error shapes, blob upload with digest checks
(streamed to disk), malformed input, unknown routes and wrong methods — and the server stays
healthy with hundreds of idle keep-alive connections open."""
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from harness import HEARTH, Checker


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def request(port, method, path, body=None, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    c.request(method, path, body=data)
    r = c.getresponse()
    text = r.read().decode("utf-8", "replace")
    c.close()
    return r.status, r.getheader("Content-Type") or "", text


def main():
    c = Checker("server-store")
    models = tempfile.mkdtemp(prefix="hearth-models-")
    port = free_port()
    env = dict(os.environ, HEARTH_MODELS=models, HEARTH_HOST=f"127.0.0.1:{port}")
    srv = subprocess.Popen([HEARTH, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        st, ct, body = request(port, "GET", "/")
        c.check(st == 200 and body == "Ollama is running", f"GET / -> {st} {body!r}")
        st, _, _ = request(port, "HEAD", "/")
        c.check(st == 200, f"HEAD / -> {st}")
        st, ct, body = request(port, "GET", "/api/version")
        v = json.loads(body)["version"]
        c.check(st == 200 and all(p.isdigit() for p in v.split(".")), f"version {v!r}")
        st, _, body = request(port, "GET", "/api/tags")
        c.check(st == 200 and json.loads(body) == {"models": []}, f"empty tags: {body}")

        # Blobs: upload checked against the digest in the path; bad digests refused.
        data = os.urandom(3 << 20)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        st, _, _ = request(port, "HEAD", f"/api/blobs/{digest}")
        c.check(st == 404, f"HEAD missing blob -> {st}")
        st, _, body = request(port, "POST", f"/api/blobs/sha256:{'0' * 64}", raw=data)
        c.check(st == 400 and "digest mismatch" in json.loads(body)["error"],
                f"mismatched upload -> {st} {body}")
        st, _, _ = request(port, "POST", f"/api/blobs/{digest}", raw=data)
        c.check(st == 201, f"upload -> {st}")
        st, _, _ = request(port, "HEAD", f"/api/blobs/{digest}")
        c.check(st == 200, f"HEAD uploaded blob -> {st}")
        st, _, body = request(port, "HEAD", "/api/blobs/sha256:XYZ")
        c.check(st == 400, f"bad digest format -> {st}")
        leftovers = [f for f in os.listdir(os.path.join(models, "blobs")) if f.startswith(".tmp")]
        c.check(not leftovers, f"temporary upload files left: {leftovers}")

        # A model made of stored blobs, then copy and delete through the API.
        cfg = b'{"model_format":"gguf"}'
        cfg_d = "sha256:" + hashlib.sha256(cfg).hexdigest()
        request(port, "POST", f"/api/blobs/{cfg_d}", raw=cfg)
        man = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
               "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                          "digest": cfg_d, "size": len(cfg)},
               "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest,
                           "size": len(data)}]}
        mdir = os.path.join(models, "manifests", "registry.ollama.ai", "library", "tiny")
        os.makedirs(mdir)
        with open(os.path.join(mdir, "latest"), "w") as f:
            json.dump(man, f)
        st, _, body = request(port, "GET", "/api/tags")
        tags = json.loads(body)["models"]
        c.check(len(tags) == 1 and tags[0]["name"] == "tiny:latest" and
                tags[0]["size"] == len(data) + len(cfg), f"tags: {body}")
        st, _, body = request(port, "POST", "/api/copy", {"source": "tiny", "destination": "me/tiny2:v1"})
        c.check(st == 200 and body == "", f"copy -> {st} {body!r}")
        names = sorted(m["name"] for m in json.loads(request(port, "GET", "/api/tags")[2])["models"])
        c.check(names == ["me/tiny2:v1", "tiny:latest"], f"after copy: {names}")
        st, _, body = request(port, "DELETE", "/api/delete", {"model": "tiny"})
        c.check(st == 200, f"delete -> {st} {body}")
        st, _, _ = request(port, "HEAD", f"/api/blobs/{digest}")
        c.check(st == 200, "a blob still used by the copy was removed")
        st, _, body = request(port, "DELETE", "/api/delete", {"model": "me/tiny2:v1"})
        st, _, _ = request(port, "HEAD", f"/api/blobs/{digest}")
        c.check(st == 404, "the last delete did not remove the blob")

        # Bad input: each a 4xx with a JSON error naming the problem.
        for method, path, raw, want_status, want in [
            ("POST", "/api/copy", "{bad", 400, "invalid JSON"),
            ("POST", "/api/copy", "", 400, "missing request body"),
            ("POST", "/api/copy", "[1,2]", 400, "JSON object"),
            ("POST", "/api/copy", '{"source": 5}', 400, "must be a string"),
            ("POST", "/api/copy", '{"source": "a b", "destination": "x"}', 400, "is invalid"),
            ("POST", "/api/copy", '{"source": "nope", "destination": "x"}', 404, "not found"),
            ("DELETE", "/api/delete", '{"model": "nope"}', 404, "not found"),
            ("DELETE", "/api/delete", '{"model": "../../etc"}', 400, "invalid model name"),
            ("DELETE", "/api/delete", "{}", 400, "model is required"),
            ("GET", "/api/copy", None, 405, "not allowed"),
            ("GET", "/no/such/route", None, 404, "not found"),
        ]:
            st, ct, body = request(port, method, path, raw=raw)
            ok = st == want_status and "application/json" in ct and want in json.loads(body)["error"]
            c.check(ok, f"{method} {path} {raw!r}: {st} {body}")
        big = "x" * (65 << 20)
        try:
            st, _, body = request(port, "POST", "/api/copy", raw=big)
            c.check(st == 413 and "too large" in json.loads(body)["error"], f"oversize -> {st} {body}")
        except (ConnectionError, http.client.HTTPException) as e:
            c.check(False, f"oversize body: connection error {e}")

        # Hundreds of idle keep-alive connections do not starve new requests.
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
        t0 = time.time()
        st, _, body = request(port, "GET", "/api/version")
        c.check(st == 200 and time.time() - t0 < 2, f"with 300 idle connections: {st} in "
                f"{time.time() - t0:.2f}s")
        for s in idle:
            s.close()
        c.check(srv.poll() is None, "server exited")
    finally:
        srv.terminate()
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
        shutil.rmtree(models, ignore_errors=True)
    c.check(srv.returncode == 0, f"server exit code {srv.returncode} on SIGTERM")
    c.finish()


if __name__ == "__main__":
    main()
