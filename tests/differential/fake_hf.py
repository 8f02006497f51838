"""A stand-in for the Hugging Face Hub on loopback, answering the URLs hearth's
`pull hf.co/<org>/<repo>[:<quant>]` uses, with a separate "CDN" listener and fault injection,
so the Hugging Face path can be tested without a network.

Hub (HF_ENDPOINT = hub.url):
  GET /api/models/<org>/<repo>/tree/main?recursive=true
      the repository's files as huggingface_hub lists them: [{"type","oid","size","path",
      "lfs": {"oid": <sha256>, "size", "pointerSize"}}] (GGUF files are LFS files; others are
      plain, their oid a git blob SHA-1), directories as {"type": "directory"}. With `page_size`
      set, pages of that many entries chained by `Link: <...&cursor=N>; rel="next"`.
  GET|HEAD /<org>/<repo>/resolve/main/<path>
      302 to http://localhost:<cdn port>/cdn/<sha256>?expires=... (another host: a client must not
      send the Hub's token there); a plain (non-LFS) file is served in place.
  A repository not added answers 404 ({"error": "Repository not found"}); with `require_token`
  set, a request without `Authorization: Bearer <token>` answers 401.
CDN: GET /cdn/<sha256> serves the bytes, with Range (206) support.

Faults (per file sha256, on CDN data GETs): fault(sha, "corrupt", times=N, at=byte) flips one
byte of the next N answers that hold it.

Log entries (`log`): server ("hub"/"cdn"), method, path, query, range, auth, status, bytes.

Also `split_gguf(src, out_dir, name, n)`: llama.cpp's gguf-split layout (split.no / split.count /
split.tensors.count in every part, all metadata in the first, tensors spread in order), for
making split models from the fixtures.
"""
import hashlib
import json
import os
import re
import struct
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


class FakeHF:
    def __init__(self, host="127.0.0.1"):
        self.repos = {}  # (org, repo) -> {path: bytes}
        self.require_token = None
        self.page_size = None
        self.log = []
        self.errors = []
        self._faults = {}  # sha256 hex -> [{"kind", "times", "at", "fired"}]
        self._lock = threading.Lock()
        self.hub = _Server((host, 0), _Handler)
        self.hub.owner, self.hub.role = self, "hub"
        self.cdn = _Server((host, 0), _Handler)
        self.cdn.owner, self.cdn.role = self, "cdn"
        self.host = host
        self._threads = []
        for s in (self.hub, self.cdn):
            t = threading.Thread(target=s.serve_forever, daemon=True)
            t.start()
            self._threads.append(t)

    @property
    def url(self):
        return f"http://{self.host}:{self.hub.server_address[1]}"

    @property
    def cdn_port(self):
        return self.cdn.server_address[1]

    def stop(self):
        for s in (self.hub, self.cdn):
            s.shutdown()
            s.server_close()

    def add_file(self, org, repo, path, data):
        with self._lock:
            self.repos.setdefault((org, repo), {})[path] = bytes(data)
        return sha256_hex(data)

    def fault(self, sha, kind="corrupt", times=1, at=0):
        f = {"kind": kind, "times": times, "at": at, "fired": 0}
        with self._lock:
            self._faults.setdefault(sha, []).append(f)
        return f

    def clear(self):
        with self._lock:
            self._faults.clear()
            self.log.clear()

    def entries(self, **match):
        with self._lock:
            return [e for e in self.log if all(e.get(k) == v for k, v in match.items())]

    def blob(self, sha):
        with self._lock:
            for files in self.repos.values():
                for data in files.values():
                    if sha256_hex(data) == sha:
                        return data
        return None

    def tree(self, org, repo):
        files = self.repos.get((org, repo))
        if files is None:
            return None
        out, dirs = [], set()
        for path in sorted(files):
            parts = path.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    out.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": d})
            data = files[path]
            e = {"type": "file", "size": len(data), "path": path}
            if path.lower().endswith(".gguf"):
                e["oid"] = hashlib.sha1(b"pointer " + data[:64]).hexdigest()
                e["size"] = 134  # the pointer file's size, as the Hub lists it
                e["lfs"] = {"oid": sha256_hex(data), "size": len(data), "pointerSize": 134}
            else:
                e["oid"] = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            out.append(e)
        return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_HEAD(self):
        self._dispatch(head=True)

    def do_GET(self):
        self._dispatch(head=False)

    def _dispatch(self, head):
        owner, role = self.server.owner, self.server.role
        u = urllib.parse.urlsplit(self.path)
        entry = {"server": role, "method": self.command, "path": urllib.parse.unquote(u.path),
                 "query": u.query, "range": self.headers.get("Range"),
                 "auth": self.headers.get("Authorization"), "status": None, "bytes": 0}
        with owner._lock:
            owner.log.append(entry)
        try:
            if role == "hub":
                self._hub(owner, entry, u, head)
            else:
                self._cdn(owner, entry, u, head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:  # noqa: BLE001 - reported through owner.errors
            import traceback
            owner.errors.append(traceback.format_exc())
            raise

    def _send(self, entry, code, body=b"", ctype="application/json", headers=(), head=False):
        entry["status"] = code
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)
            entry["bytes"] = len(body)

    def _hub(self, owner, entry, u, head):
        if owner.require_token and self.headers.get("Authorization") != \
                "Bearer " + owner.require_token:
            return self._send(entry, 401, b'{"error":"Invalid credentials in Authorization header"}')
        path = entry["path"]
        m = re.fullmatch(r"/api/models/([^/]+)/([^/]+)/tree/main", path)
        if m:
            tree = owner.tree(m.group(1), m.group(2))
            if tree is None:
                return self._send(entry, 404, b'{"error":"Repository not found"}')
            q = urllib.parse.parse_qs(u.query)
            if q.get("recursive") != ["true"]:
                tree = [e for e in tree if "/" not in e["path"]]
            headers = []
            if owner.page_size:
                start = int(q.get("cursor", ["0"])[0])
                page = tree[start:start + owner.page_size]
                if start + owner.page_size < len(tree):
                    nxt = f"{owner.url}{path}?recursive=true&cursor={start + owner.page_size}"
                    headers.append(("Link", f'<{nxt}>; rel="next"'))
                tree = page
            return self._send(entry, 200, json.dumps(tree).encode(), headers=headers, head=head)
        m = re.fullmatch(r"/([^/]+)/([^/]+)/resolve/main/(.+)", path)
        if m:
            files = owner.repos.get((m.group(1), m.group(2)))
            if files is None:
                return self._send(entry, 404, b'{"error":"Repository not found"}')
            data = files.get(m.group(3))
            if data is None:
                return self._send(entry, 404, b'{"error":"Entry not found"}')
            if not m.group(3).lower().endswith(".gguf"):
                return self._send(entry, 200, data, ctype="application/octet-stream", head=head)
            loc = f"http://localhost:{owner.cdn_port}/cdn/{sha256_hex(data)}?expires=9999999999"
            return self._send(entry, 302, b"", headers=[("Location", loc)], head=head)
        return self._send(entry, 404, b'{"error":"not found"}')

    def _cdn(self, owner, entry, u, head):
        m = re.fullmatch(r"/cdn/([0-9a-f]{64})", entry["path"])
        data = owner.blob(m.group(1)) if m else None
        if data is None:
            return self._send(entry, 404, b"NoSuchKey", ctype="text/plain")
        sha = m.group(1)
        start, end = 0, len(data) - 1
        rng = self.headers.get("Range")
        code = 200
        if rng:
            r = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not r or int(r.group(1)) >= len(data):
                return self._send(entry, 416, b"", ctype="text/plain")
            start = int(r.group(1))
            end = min(int(r.group(2)), len(data) - 1) if r.group(2) else len(data) - 1
            code = 206
        body = bytearray(data[start:end + 1])
        with owner._lock:
            for f in owner._faults.get(sha, []):
                if f["fired"] < f["times"] and f["kind"] == "corrupt" and start <= f["at"] <= end:
                    body[f["at"] - start] ^= 0xFF
                    f["fired"] += 1
                    entry["fault"] = "corrupt"
                    break
        headers = [("Accept-Ranges", "bytes"), ("ETag", f'"{sha}"')]
        if code == 206:
            headers.append(("Content-Range", f"bytes {start}-{end}/{len(data)}"))
        return self._send(entry, code, bytes(body), ctype="application/octet-stream",
                          headers=headers, head=head)


# ---- GGUF splitting (llama.cpp's gguf-split layout)

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
           11: "<q", 12: "<d"}


def _skip_value(b, p, t):
    if t == 8:
        (n,) = struct.unpack_from("<Q", b, p)
        return p + 8 + n
    if t == 9:
        et, cnt = struct.unpack_from("<IQ", b, p)
        p += 12
        if et in _SCALAR:
            return p + cnt * struct.calcsize(_SCALAR[et])
        for _ in range(cnt):
            p = _skip_value(b, p, et)
        return p
    return p + struct.calcsize(_SCALAR[t])


def split_gguf(src, out_dir, name, n):
    """Writes <out_dir>/<name>-0000i-of-0000n.gguf (i = 1..n) holding src's tensors split in
    order into n nearly equal groups; returns the paths."""
    b = open(src, "rb").read()
    assert b[:4] == b"GGUF"
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", b, 4)
    p = 24
    kv_raw = []  # (key, raw bytes of key + type + value)
    alignment = 32
    for _ in range(n_kv):
        k0 = p
        (kl,) = struct.unpack_from("<Q", b, p)
        key = b[p + 8:p + 8 + kl].decode()
        p += 8 + kl
        (t,) = struct.unpack_from("<I", b, p)
        p += 4
        v0 = p
        p = _skip_value(b, p, t)
        if key == "general.alignment":
            alignment = struct.unpack_from(_SCALAR[t], b, v0)[0]
        kv_raw.append((key, b[k0:p]))
    tensors = []  # (name bytes, dims raw (n_dims + ne), type, offset)
    for _ in range(n_tensors):
        (nl,) = struct.unpack_from("<Q", b, p)
        tname = b[p + 8:p + 8 + nl]
        p += 8 + nl
        (nd,) = struct.unpack_from("<I", b, p)
        dims = b[p:p + 4 + 8 * nd]
        p += 4 + 8 * nd
        ttype, off = struct.unpack_from("<IQ", b, p)
        p += 12
        tensors.append([tname, dims, ttype, off])
    data_start = (p + alignment - 1) // alignment * alignment
    order = sorted(range(n_tensors), key=lambda i: tensors[i][3])
    sizes = {}
    for j, i in enumerate(order):
        nxt = tensors[order[j + 1]][3] if j + 1 < len(order) else len(b) - data_start
        sizes[i] = nxt - tensors[i][3]

    def kv(key, t, fmt, v):
        kb = key.encode()
        return struct.pack("<Q", len(kb)) + kb + struct.pack("<I", t) + struct.pack(fmt, v)

    per = (n_tensors + n - 1) // n
    paths = []
    for s in range(n):
        group = list(range(s * per, min(n_tensors, (s + 1) * per)))
        kvs = [raw for key, raw in kv_raw if not key.startswith("split.")] if s == 0 else []
        kvs += [kv("split.no", 2, "<H", s), kv("split.count", 2, "<H", n),
                kv("split.tensors.count", 5, "<i", n_tensors)]
        if s > 0 and alignment != 32:
            kvs.append(kv("general.alignment", 4, "<I", alignment))
        infos, blobs, off = [], [], 0
        for i in group:
            tname, dims, ttype, o = tensors[i]
            infos.append(struct.pack("<Q", len(tname)) + tname + dims + struct.pack("<IQ", ttype, off))
            blobs.append(b[data_start + o:data_start + o + sizes[i]])
            off += sizes[i]
        head = b"GGUF" + struct.pack("<IQQ", version, len(group), len(kvs)) + b"".join(kvs) + \
            b"".join(infos)
        head += b"\0" * ((-len(head)) % alignment)
        path = os.path.join(out_dir, f"{name}-{s + 1:05d}-of-{n:05d}.gguf")
        with open(path, "wb") as f:
            f.write(head)
            for blob in blobs:
                f.write(blob)
        paths.append(path)
    return paths
