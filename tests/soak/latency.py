"""How fast `hearth serve` answers GET /api/version while it is busy: 8 chat streams and a large
blob upload (default 2 GiB) at the same time. Prints the latency distribution; not part of the
default test run (it writes gigabytes). The hardening issue asks for < 50 ms.
usage: /usr/bin/python3 tests/soak/latency.py [--upload-gib N] [--hearth PATH]
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "differential"))
from serve_util import free_port, repeated_blob  # noqa: E402
MODEL = os.path.join(ROOT, "..", "shared", "fixtures", "qwen3-F16.gguf")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upload-gib", type=float, default=2.0)
    ap.add_argument("--hearth", default=os.path.join(ROOT, "build", "hearth"))
    a = ap.parse_args()
    models = tempfile.mkdtemp(prefix="hearth-lat-")
    port = free_port()
    env = dict(os.environ, HEARTH_MODELS=models, HEARTH_HOST=f"127.0.0.1:{port}")
    proc = subprocess.Popen([a.hearth, "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

        def req(method, path, body=None, timeout=600):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            c.request(method, path, body=json.dumps(body) if body is not None else None)
            r = c.getresponse()
            data = r.read()
            c.close()
            return r.status, data

        st, _ = req("POST", "/api/create", {"model": "base", "from": MODEL, "stream": False})
        assert st == 200, st
        stop = threading.Event()
        tokens = [0]

        def streamer(i):
            while not stop.is_set():
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                c.request("POST", "/api/chat", body=json.dumps({
                    "model": "base", "messages": [{"role": "user", "content": f"story {i}"}],
                    "options": {"num_predict": 200}}))
                for _ in c.getresponse():
                    tokens[0] += 1
                    if stop.is_set():
                        break
                c.close()

        size = int(a.upload_gib * (1 << 30)) >> 20 << 20
        piece, digest = repeated_blob(size)
        result = {}

        def upload():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            c.putrequest("POST", "/api/blobs/" + digest)
            c.putheader("Content-Length", str(size))
            c.endheaders()
            t0 = time.monotonic()
            for _ in range(size >> 20):
                c.send(piece)
            result["status"] = c.getresponse().status
            result["seconds"] = time.monotonic() - t0
            c.close()

        streams = [threading.Thread(target=streamer, args=(i,)) for i in range(8)]
        for t in streams:
            t.start()
        time.sleep(2)  # streams running
        up = threading.Thread(target=upload)
        up.start()
        lat = []
        while up.is_alive():
            t0 = time.monotonic()
            st, _ = req("GET", "/api/version")
            lat.append((time.monotonic() - t0) * 1000)
            time.sleep(0.02)
        up.join()
        stop.set()
        for t in streams:
            t.join()
        lat.sort()
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
        print(f"upload {size >> 20} MiB: status {result.get('status')}, {result.get('seconds', 0):.1f} s"
              f"; 8 streams: {tokens[0]} chunks")
        print(f"/api/version over {len(lat)} requests: p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, "
              f"max {lat[-1]:.1f} ms")
        ok = result.get("status") == 201 and lat[-1] < 50
        print("latency:", "PASS" if ok else "FAIL (> 50 ms or upload failed)")
        sys.exit(0 if ok else 1)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(models, ignore_errors=True)


if __name__ == "__main__":
    main()
