"""Helpers for tests that run a real `hearth serve` on loopback: start/stop, JSON and NDJSON
requests, and placing a GGUF in a store directory the way /api/create lays it out."""
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from harness import HEARTH


def repeated_blob(size):
    """A blob of `size` bytes (a multiple of 1 MiB) made of one random 1 MiB piece repeated,
    for streaming large uploads without holding them: (piece, "sha256:<hex>" of the whole)."""
    piece = os.urandom(1 << 20)
    h = hashlib.sha256()
    for _ in range(size >> 20):
        h.update(piece)
    return piece, "sha256:" + h.hexdigest()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, models=None, env=None, port=None, preexec_fn=None):
        self.models = models or tempfile.mkdtemp(prefix="hearth-models-")
        self.port = port or free_port()
        e = dict(os.environ, HEARTH_MODELS=self.models, HEARTH_HOST=f"127.0.0.1:{self.port}")
        # The registry signing key `hearth serve` creates when missing: a throwaway one, not the
        # user's ~/.ollama or ~/.hearth key (a test that cares passes its own HEARTH_KEY).
        self._keydir = None
        if "HEARTH_KEY" not in (env or {}) and "HEARTH_KEY" not in os.environ:
            self._keydir = tempfile.mkdtemp(prefix="hearth-key-")
            e["HEARTH_KEY"] = os.path.join(self._keydir, "id_ed25519")
        # The web chat's history database: one per server, never the user's ~/.hearth/ui.sqlite.
        self._uidir = None
        if "HEARTH_UI_DB" not in (env or {}):
            self._uidir = tempfile.mkdtemp(prefix="hearth-ui-")
            e["HEARTH_UI_DB"] = os.path.join(self._uidir, "ui.sqlite")
        e.update(env or {})
        self.env = e
        self.proc = subprocess.Popen([HEARTH, "serve"], env=e, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=preexec_fn)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("hearth serve exited: " + self.proc.stderr.read())
                time.sleep(0.05)
        raise RuntimeError("hearth serve did not start")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, raw=None, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        c.request(method, path, body=data)
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        c.close()
        return r.status, r.getheader("Content-Type") or "", text

    def json(self, method, path, body=None, timeout=120):
        st, _, text = self.request(method, path, body, timeout=timeout)
        try:
            return st, json.loads(text) if text else None
        except json.JSONDecodeError:
            return st, text

    def ndjson(self, path, body, timeout=120):
        st, ct, text = self.request("POST", path, body, timeout=timeout)
        lines = [json.loads(l) for l in text.splitlines() if l.strip()] if st == 200 else text
        return st, ct, lines

    def read_log(self):
        """Everything the server wrote to stderr so far (without blocking)."""
        import fcntl
        fd = self.proc.stderr.fileno()
        fl = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        try:
            chunk = self.proc.stderr.read() or ""
        except (BlockingIOError, TypeError):
            chunk = ""
        self.log = getattr(self, "log", "") + chunk
        return self.log

    def alive(self):
        st, _, body = self.request("GET", "/")
        return st == 200 and body == "Ollama is running"

    def stop(self):
        """Stops the server; raises if a sanitizer (ASan/UBSan/LSan build) reported anything or
        the server did not exit cleanly on SIGTERM."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            rest = self.proc.stderr.read() or ""
        except (BlockingIOError, TypeError, ValueError):
            rest = ""
        log = getattr(self, "log", "") + rest
        shutil.rmtree(self.models, ignore_errors=True)
        if self._keydir:
            shutil.rmtree(self._keydir, ignore_errors=True)
        if self._uidir:
            shutil.rmtree(self._uidir, ignore_errors=True)
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "WARNING: ThreadSanitizer"):
            if marker in log:
                raise AssertionError("sanitizer report in the server log:\n" + log[-6000:])
        if self.proc.returncode not in (0, -15):
            raise AssertionError(f"hearth serve exited with {self.proc.returncode}:\n{log[-3000:]}")
        return log


def _blob(models, data=None, path=None, link=False):
    h = hashlib.sha256()
    if path:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    else:
        h.update(data)
    hexd = h.hexdigest()
    dst = os.path.join(models, "blobs", "sha256-" + hexd)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if not os.path.exists(dst):
        if path and link:
            try:  # the same file (inode): its page cache is the blob's
                os.link(path, dst)
            except OSError:
                shutil.copyfile(path, dst)
        elif path:
            shutil.copyfile(path, dst)
        else:
            with open(dst, "wb") as f:
                f.write(data)
    size = os.path.getsize(dst)
    return {"digest": "sha256:" + hexd, "size": size}


def put_model(models, name, gguf, template=None, system=None, params=None, messages=None,
              link=False):
    """Writes blobs and a manifest for `name` (e.g. "tiny:latest") into a store directory.
    link: hard-link the GGUF as its blob where the file system allows (no copy)."""
    layers = [dict(mediaType="application/vnd.ollama.image.model",
                   **_blob(models, path=gguf, link=link))]
    for mt, val in (("template", template), ("system", system)):
        if val is not None:
            layers.append(dict(mediaType=f"application/vnd.ollama.image.{mt}",
                               **_blob(models, data=val.encode())))
    if params is not None:
        layers.append(dict(mediaType="application/vnd.ollama.image.params",
                           **_blob(models, data=json.dumps(params).encode())))
    if messages is not None:
        layers.append(dict(mediaType="application/vnd.ollama.image.messages",
                           **_blob(models, data=json.dumps(messages).encode())))
    config = dict(mediaType="application/vnd.docker.container.image.v1+json",
                  **_blob(models, data=json.dumps({"model_format": "gguf"}).encode()))
    manifest = {"schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": config, "layers": layers}
    model, _, tag = name.partition(":")
    d = os.path.join(models, "manifests", "registry.ollama.ai", "library", model)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, tag or "latest"), "w") as f:
        json.dump(manifest, f)


def held_ranges(partial):
    """What a stopped pull left on disk for one blob: merged (start, end) byte ranges, read from
    the partial file's ranges log (`<partial>.ranges`: little-endian int64 pairs, a torn last
    record ignored), as the puller trusts them on resume. A partial file without a log file is a
    prefix (what an older hearth wrote); an empty log holds nothing."""
    if not os.path.exists(partial):
        return []
    size = os.path.getsize(partial)
    log = partial + ".ranges"
    if not os.path.exists(log):
        return [(0, size)] if size else []
    raw = open(log, "rb").read()
    vals = [int.from_bytes(raw[i:i + 8], "little", signed=True)
            for i in range(0, len(raw) // 16 * 16, 8)]
    spans = sorted((a, b) for a, b in zip(vals[::2], vals[1::2]) if 0 <= a < b <= size)
    merged = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def held_bytes(ranges):
    return sum(b - a for a, b in ranges)


def inside(ranges, offset):
    """Whether byte `offset` lies in one of `ranges`."""
    return any(a <= offset < b for a, b in ranges)

