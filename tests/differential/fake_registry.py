"""An in-memory registry speaking the Ollama / Docker registry v2 protocol (see
shared/design/ollama-api.md §4.3-4.6), with fault injection, so pull and push can be tested
against the answers and the failures of a real registry without a network.

In-process use (stdlib only, the server runs in a daemon thread):

    reg = FakeRegistry()                                  # 127.0.0.1, a free port
    manifest = reg.add_model("library", "tiny", "latest", layers=[(MODEL_MEDIA, gguf_bytes)])
    reg.fault(digest_of(gguf_bytes), "drop", after=4096)  # first data GET is cut after 4 KiB
    ... pull from reg.url ...
    reg.stop()

As a script, to serve a GGUF to a client by hand:

    python3 fake_registry.py --port 5000 --model ns/model:tag=/path/to/file.gguf

Blob GETs on /v2/ answer 307 to http://localhost:<port>/direct/<digest> by default: Ollama's
client takes the Location of a redirect to another hostname as the "direct URL" and fetches the
parts from it with Range and without auth, as it does from the real registry's CDN.
"""
import argparse
import hashlib
import json
import mmap
import re
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MANIFEST_MEDIA = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA = "application/vnd.docker.container.image.v1+json"
MODEL_MEDIA = "application/vnd.ollama.image.model"
# What `ollama create` writes for a bare GGUF, minus the fields it derives from the file.
DEFAULT_CONFIG = b'{"model_format":"gguf","model_family":"","file_type":""}'

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
UPLOADS_RE = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)$")
BLOB_RE = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$")
MANIFEST_RE = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")

CHUNK = 256 << 10
FAULT_KINDS = {
    "drop": {"after": 0, "rst": False},
    "corrupt": {"at": 0},
    "stall": {"after": 0, "seconds": 60.0},
    "status": {"code": 500},
    "call": {"after": 0, "fn": None},
}


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_range(header, total):
    """`Range: bytes=a-b | a- | -n` -> inclusive (start, end), or None without a header.
    Raises ValueError when it is malformed or unsatisfiable: this server answers 416 rather than
    ignoring it (RFC 9110 would allow serving 200), because a client that sends a Range it did
    not mean to must not get a full body that it then writes at the wrong offset."""
    if header is None:
        return None
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise ValueError(header)
    if m.group(1) == "":  # suffix: the last n bytes
        n = int(m.group(2))
        if n == 0 or total == 0:
            raise ValueError(header)
        return max(0, total - n), total - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else total - 1
    if start >= total or end < start:
        raise ValueError(header)
    return start, min(end, total - 1)


def key_blob(key):
    """The base64 public key blob of an authorized_keys line (or the blob itself)."""
    parts = key.split()
    return parts[1] if len(parts) > 1 else parts[0]


def verify_token_request(reg, url, authorization):
    """Checks a token request as Ollama's registry does (ollama: server/auth.go signs it): the
    Authorization header is `<base64 SSH public key blob>:<base64 ed25519 signature>`, the key is
    one of reg.authorized_keys, the signature verifies over
    `GET,<url>,<base64 of the hex sha256 of the empty body>`, and the query carries service,
    scope, a `ts` within reg.token_max_skew seconds and a fresh 16-byte base64url `nonce`.
    Returns None when it is valid, else why not."""
    import base64
    import binascii
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not authorization or ":" not in authorization:
        return "token request not signed"
    pub_b64, _, sig_b64 = authorization.partition(":")
    if pub_b64 not in {key_blob(k) for k in reg.authorized_keys}:
        return "unknown public key"
    try:
        blob = base64.b64decode(pub_b64, validate=True)
        sig = base64.b64decode(sig_b64, validate=True)
    except binascii.Error:
        return "malformed signature header"
    # string "ssh-ed25519", string <32 bytes>
    if len(blob) != 4 + 11 + 4 + 32 or blob[:15] != b"\0\0\0\x0bssh-ed25519" or \
            blob[15:19] != b"\0\0\0\x20":
        return "not an ssh-ed25519 public key blob"
    empty = base64.b64encode(hashlib.sha256(b"").hexdigest().encode()).decode()
    signed = f"GET,{url},{empty}".encode()
    try:
        Ed25519PublicKey.from_public_bytes(blob[19:]).verify(sig, signed)
    except InvalidSignature:
        return "signature does not verify"
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    if "service" not in q or "scope" not in q:
        return "token request lacks service or scope"
    try:
        ts = int(q.get("ts", [""])[0])
    except ValueError:
        return "token request lacks ts"
    if abs(time.time() - ts) > reg.token_max_skew:
        return "stale ts"
    nonce = q.get("nonce", [""])[0]
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16 or "=" in nonce:
        return "token request lacks a 16-byte nonce"
    with reg._lock:
        if nonce in reg._nonces:
            return "replayed nonce"
        reg._nonces.add(nonce)
    return None


class Fault:
    """One injected failure. `fired` counts the requests it changed; once it reaches `times`
    the fault is spent and requests succeed again. `range_start`, when set, limits it to data
    GETs whose range begins at that blob offset (to hit one part of a parallel download)."""

    def __init__(self, kind, times, range_start=None, **params):
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (one of {sorted(FAULT_KINDS)})")
        unknown = set(params) - set(FAULT_KINDS[kind])
        if unknown:
            raise TypeError(f"fault {kind!r} takes no parameter(s) {sorted(unknown)}")
        self.kind = kind
        self.times = times
        self.range_start = range_start
        self.fired = 0
        self.__dict__.update({**FAULT_KINDS[kind], **params})

    @property
    def remaining(self):
        return self.times - self.fired

    def applies(self, start, end):
        """Whether this fault would change a response carrying blob bytes start..end; a fault
        that could not (a drop after the last byte, a flip outside the range) does not count."""
        if self.remaining <= 0:
            return False
        if self.range_start is not None and self.range_start != start:
            return False
        if self.kind == "corrupt":
            return start <= self.at <= end
        if self.kind in ("drop", "stall", "call"):
            return self.after < end - start + 1
        return True

    def __repr__(self):
        return f"Fault({self.kind}, fired {self.fired}/{self.times})"


class _Upload:
    def __init__(self, name):  # the repository it was started for
        self.name = name
        self.data = bytearray()

    def write(self, offset, body):
        if offset is None:
            offset = len(self.data)
        if offset > len(self.data):  # parts may arrive out of order: leave a hole to fill
            self.data.extend(bytes(offset - len(self.data)))
        self.data[offset : offset + len(body)] = body


class FakeRegistry:
    """The registry: content, switches, faults and the request log. Starts listening on
    construction; use as a context manager or call stop().

    Switches (plain attributes, may be changed while serving):
      redirect_blobs        blob GETs answer 307 to the direct URL (default True)
      redirect_host         hostname of the direct URL ("localhost": not the registry's host)
      redirect_uploads      PATCH with `X-Redirect-Uploads: 1` answers 307 to a PUT target
      case_insensitive_tags match tags ignoring case, as Hugging Face does for quant tags
      require_token         a token every /v2/ request must carry as `Bearer <token>`
      authorized_keys       None, or the public keys (authorized_keys lines `ssh-ed25519 <b64>`
                            or the bare base64 blobs) whose signature GET /token requires, as
                            Ollama's registry requires (see verify_token_request)
      token_max_skew        seconds a signed token request's `ts` may be off (default 60)
      token_realm           the realm the 401 challenge names (None: this registry's /token)
      verbose               print each request to stderr
      rate                  blob bytes per second per request (None: as fast as possible), so a
                            test can stop a client mid-pull

    Log entries (`log`, `entries()`): method, path (unquoted, without the query), query (raw
    string), range (the Range header or None), status, bytes_sent (blob body bytes handed to
    the socket), auth (the Authorization header or None), digest (the blob a blob or /direct/
    request named), span (inclusive blob byte range answered), fault (kind that fired), host
    (the Host header: tells whether the client followed the redirect).
    """

    def __init__(self, host="127.0.0.1", port=0):
        self.redirect_blobs = True
        self.redirect_host = "localhost"
        self.redirect_uploads = False
        self.case_insensitive_tags = False
        self.require_token = None
        self.authorized_keys = None
        self.token_max_skew = 60
        self.token_realm = None
        self.verbose = False
        self.rate = None

        self.blobs = {}  # "sha256:<hex>" -> bytes-like
        self.manifests = {}  # (ns, model, tag) -> bytes, exactly as added or pushed
        # One dict per request, see _Handler._dispatch. Appended when the request arrives and
        # filled in before each part of the answer is written, so that a client that has read
        # an answer always finds it complete in the log.
        self.log = []
        self.token_requests = []  # {"query", "params", "auth", "refused"} per GET /token
        self._nonces = set()  # nonces of accepted signed token requests (a replay is refused)
        # Tracebacks of exceptions in request handlers: the client only sees a closed
        # connection, which a test of drops would take for an injected one. Assert it is empty.
        self.errors = []

        self._lock = threading.Lock()
        self._aliases = {}  # (ns, model) -> tag that "latest" stands for
        self._faults = {}  # digest -> [Fault]
        self._manifest_faults = []
        self._uploads = {}  # upload id -> _Upload
        self._stopping = threading.Event()

        self._server = _Server((host, port), _Handler)
        self._server.registry = self
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"fake-registry:{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def stop(self):
        """Stop serving: ends stalls early and closes idle keep-alive connections, so no handler
        thread outlives the test by long."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # Content.

    def add_blob(self, data):
        """Store a blob (bytes-like; an mmap is served without copying); returns its digest."""
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        digest = digest_of(data)
        with self._lock:
            self.blobs[digest] = data
        return digest

    def add_manifest(self, ns, model, tag, manifest_bytes):
        """Store manifest bytes as they are (not validated: a test may want a broken one);
        returns the manifest's digest."""
        with self._lock:
            self.manifests[(ns, model, tag)] = bytes(manifest_bytes)
        return digest_of(manifest_bytes)

    def add_model(self, ns, model, tag, layers, config=DEFAULT_CONFIG):
        """Add the layer and config blobs and a Docker v2 manifest naming them; returns the
        manifest bytes. layers: [(media_type, data)] or [(media_type, data, extra_fields)]."""
        entries = []
        for layer in layers:
            media, data = layer[0], layer[1]
            entry = {"mediaType": media, "digest": self.add_blob(data), "size": len(data)}
            entries.append({**entry, **(layer[2] if len(layer) > 2 else {})})
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA,
            "config": {"mediaType": CONFIG_MEDIA, "digest": self.add_blob(config),
                       "size": len(config)},
            "layers": entries,
        }
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        self.add_manifest(ns, model, tag, raw)
        return raw

    def alias_latest(self, ns, model, tag):
        """Make `latest` resolve to whatever `tag` holds (checked at each request)."""
        with self._lock:
            self._aliases[(ns, model)] = tag

    def manifest(self, ns, model, tag):
        """The manifest a GET of that tag would serve (aliases and tag case applied), or None."""
        with self._lock:
            return self._resolve(ns, model, tag)

    def _resolve(self, ns, model, ref):
        if DIGEST_RE.match(ref):  # registries also serve manifests by their own digest
            for (n, m, _), raw in self.manifests.items():
                if (n, m) == (ns, model) and digest_of(raw) == ref:
                    return raw
            return None
        same = (lambda a, b: a.lower() == b.lower()) if self.case_insensitive_tags else str.__eq__
        alias = self._aliases.get((ns, model))
        if alias is not None and same(ref, "latest") and not same(alias, "latest"):
            return self._resolve(ns, model, alias)  # the alias wins over a stored "latest"
        if (ns, model, ref) in self.manifests:
            return self.manifests[(ns, model, ref)]
        for (n, m, t), raw in self.manifests.items():
            if (n, m) == (ns, model) and same(t, ref):
                return raw
        return None

    # Faults.

    def fault(self, digest, kind, times=1, **params):
        """Inject a fault into the next `times` data GETs of `digest` that it can affect (on
        /direct/ and on the /v2/ blob path when not redirecting); faults of one digest are tried
        in the order added and at most one fires per request. Kinds and parameters:
          drop     after=0, rst=False  send headers and `after` body bytes, then close (FIN, or
                                       RST with rst=True)
          corrupt  at=0                flip blob byte `at` (only fires when the range holds it)
          stall    after=0, seconds=60 send `after` bytes, send nothing for `seconds`, then the
                                       rest if the client is still there
          status   code=500            answer `code` with a small JSON error body
          call     after=0, fn=None     send `after` bytes, call fn() in the handler thread (the
                                       bytes are sent, not necessarily written by the client
                                       yet; the rest waits for fn), then the rest: e.g. to fill
                                       the client's disk in the middle of a blob
        Every kind also takes range_start=N. Returns the Fault (see .fired)."""
        f = Fault(kind, times, **params)
        with self._lock:
            self._faults.setdefault(digest, []).append(f)
        return f

    def fail_manifest(self, code=500, times=1):
        """Answer the next `times` manifest GET/HEADs with status `code`; returns the Fault."""
        f = Fault("status", times, code=code)
        with self._lock:
            self._manifest_faults.append(f)
        return f

    def clear_faults(self):
        with self._lock:
            self._faults.clear()
            self._manifest_faults.clear()

    def _take_fault(self, faults, start, end):
        with self._lock:
            for f in faults:
                if f.applies(start, end):
                    f.fired += 1
                    return f
        return None

    # Log.

    def entries(self, **match):
        """Log entries whose fields equal all of `match`, e.g. entries(method="GET", digest=d)."""
        with self._lock:
            return [e for e in self.log if all(e.get(k) == v for k, v in match.items())]

    def bytes_served(self, digest):
        """Blob body bytes written for `digest` over all data GETs (cut-short ones included)."""
        return sum(e["bytes_sent"] for e in self.entries(method="GET", digest=digest))

    def clear_log(self):
        with self._lock:
            self.log.clear()
            self.token_requests.clear()

    def _begin(self, entry):
        with self._lock:
            self.log.append(entry)

    def _end(self, entry):
        if self.verbose:
            rng = f" [{entry['range']}]" if entry["range"] else ""
            fault = f" fault={entry['fault']}" if entry["fault"] else ""
            print(f"{entry['method']} {entry['path']}{rng} -> {entry['status']} "
                  f"({entry['bytes_sent']} B){fault}", file=sys.stderr, flush=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args):
        self._conns = set()
        self._conns_lock = threading.Lock()
        super().__init__(*args)

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # A client that goes away (killed mid-pull, a connection it reset) is not a bug here.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        self.registry.errors.append(traceback.format_exc())
        super().handle_error(request, client_address)

    def close_connections(self):
        # Handler threads of idle keep-alive connections would otherwise wait for the client.
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-registry/1.0"

    def log_message(self, format, *args):
        pass  # FakeRegistry.verbose prints its own line per request

    def do_GET(self):
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self):
        reg = self.server.registry
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        self.entry = {
            "method": self.command,
            "path": path,
            "query": url.query,
            "range": self.headers.get("Range"),
            "status": None,
            "bytes_sent": 0,
            "auth": self.headers.get("Authorization"),
            "digest": None,
            "span": None,
            "fault": None,
            "host": self.headers.get("Host"),
        }
        reg._begin(self.entry)
        try:
            try:
                body = self._read_body()
            except ValueError:
                self.close_connection = True
                return self._error(400, "BAD_REQUEST", "unreadable request body")
            self._route(reg, path, urllib.parse.parse_qs(url.query), body)
        except ConnectionError:
            self.close_connection = True  # the client went away mid-answer: expected in tests
        finally:
            reg._end(self.entry)

    def _route(self, reg, path, query, body):
        method = self.command
        if path == "/token" and method == "GET":
            return self._token(reg)
        if path.startswith("/direct/") and method in ("GET", "HEAD"):
            return self._serve_blob(reg, path[len("/direct/") :])
        if path.startswith("/upload-direct/") and method == "PUT":
            return self._upload_direct(reg, path[len("/upload-direct/") :], query, body)
        if not path.startswith("/v2/") and path != "/v2":
            return self._error(404, "NOT_FOUND", "no such route")
        if path in ("/v2", "/v2/"):  # the Docker API version check
            if self._authorized(reg, None):
                self._reply(200, b"{}", "application/json")
            return
        for regex, handler in (
            (UPLOADS_RE, self._uploads),
            (BLOB_RE, self._blob),
            (MANIFEST_RE, self._manifest),
        ):
            m = regex.match(path)
            if m:
                ns, _, model = m.group("name").rpartition("/")
                if self._authorized(reg, m.group("name")):
                    handler(reg, ns, model, m.groups()[1], query, body)
                return
        return self._error(404, "NAME_UNKNOWN", "no such route")

    # Plumbing.

    def _read_body(self):
        # Every body is consumed, even for requests refused with 401, so the next request on a
        # keep-alive connection starts where the client thinks it does.
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline(1 << 16).split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1 << 16) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(1 << 16)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _reply(self, status, body=b"", content_type=None, headers=None, length=None):
        """Status, headers and (except for HEAD) body. `length` overrides Content-Length for a
        HEAD that describes a body it does not send."""
        self.entry["status"] = status
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _error(self, status, code, message, headers=None):
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._reply(status, body, "application/json", headers)

    def _authorized(self, reg, name):
        token = reg.require_token
        if token is None or self.headers.get("Authorization") == f"Bearer {token}":
            return True
        challenge = f'Bearer realm="{reg.token_realm or reg.url + "/token"}",service="fake-registry"'
        if name is not None:
            action = "pull" if self.command in ("GET", "HEAD") else "pull,push"
            challenge += f',scope="repository:{name}:{action}"'
        self._error(401, "UNAUTHORIZED", "authentication required",
                    {"WWW-Authenticate": challenge})
        return False

    def _token(self, reg):
        url = urllib.parse.urlsplit(self.path)
        refused = None
        if reg.authorized_keys is not None:
            # What the client signed: the URL it requested, as it spelled it.
            full = f"http://{self.headers.get('Host', '')}{self.path}"
            refused = verify_token_request(reg, full, self.headers.get("Authorization"))
        with reg._lock:
            reg.token_requests.append({
                "query": url.query,
                "params": dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
                "auth": self.headers.get("Authorization"),
                "refused": refused,
            })
        if refused is not None:
            return self._error(401, "UNAUTHORIZED", refused)
        token = reg.require_token or "anonymous"
        self._reply(200, json.dumps({"token": token}).encode(), "application/json")

    # Manifests.

    def _manifest(self, reg, ns, model, ref, query, body):
        if self.command == "PUT":
            return self._put_manifest(reg, ns, model, ref, body)
        if self.command not in ("GET", "HEAD"):
            return self._error(405, "UNSUPPORTED", "method not allowed")
        f = reg._take_fault(reg._manifest_faults, 0, 0)
        if f is not None:
            self.entry["fault"] = f.kind
            return self._error(f.code, "UNKNOWN", f"injected fault: status {f.code}")
        raw = reg.manifest(ns, model, ref)
        if raw is None:
            return self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        self._reply(200, raw, MANIFEST_MEDIA, {"Docker-Content-Digest": digest_of(raw)})

    def _put_manifest(self, reg, ns, model, tag, body):
        try:
            m = json.loads(body)
            refs = [m["config"]["digest"]] + [layer["digest"] for layer in m["layers"]]
        except (ValueError, KeyError, TypeError):
            return self._error(400, "MANIFEST_INVALID", "manifest invalid")
        missing = [d for d in refs if d not in reg.blobs]
        if missing:
            return self._error(400, "BLOB_UNKNOWN", f"blob unknown to registry: {missing[0]}")
        digest = reg.add_manifest(ns, model, tag, body)
        self._reply(201, headers={"Docker-Content-Digest": digest,
                                  "Location": f"/v2/{ns}/{model}/manifests/{digest}"})

    # Blobs.

    def _blob(self, reg, ns, model, digest, query, body):
        if self.command not in ("GET", "HEAD"):
            return self._error(405, "UNSUPPORTED", "method not allowed")
        self.entry["digest"] = digest
        if self.command == "GET" and reg.redirect_blobs:
            if digest not in reg.blobs:
                return self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            location = f"http://{reg.redirect_host}:{reg.port}/direct/{digest}"
            return self._reply(307, headers={"Location": location})
        self._serve_blob(reg, digest)

    def _serve_blob(self, reg, digest):
        self.entry["digest"] = digest
        data = reg.blobs.get(digest)
        if data is None:
            return self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        total = len(data)
        try:
            span = parse_range(self.headers.get("Range"), total)
        except ValueError:
            return self._error(416, "RANGE_INVALID", "range not satisfiable",
                               {"Content-Range": f"bytes */{total}"})
        start, end = span or (0, total - 1)
        self.entry["span"] = (start, end)
        headers = {"Accept-Ranges": "bytes", "Docker-Content-Digest": digest}
        if span:
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        status = 206 if span else 200
        if self.command == "HEAD":
            return self._reply(status, b"", "application/octet-stream", headers, end - start + 1)

        f = reg._take_fault(reg._faults.get(digest, ()), start, end) if total else None
        if f is not None:
            self.entry["fault"] = f.kind
            if f.kind == "status":
                return self._error(f.code, "UNKNOWN", f"injected fault: status {f.code}")
        self._reply(status, b"", "application/octet-stream", headers, end - start + 1)

        length = end - start + 1
        if f is not None and f.kind in ("drop", "stall"):
            self._send_span(data, start, start + f.after, f)
            if f.kind == "drop":
                return self._abort(f.rst)
            reg._stopping.wait(f.seconds)
            if reg._stopping.is_set():
                return self._abort(False)
            self._send_span(data, start + f.after, start + length, f)
        elif f is not None and f.kind == "call":
            self._send_span(data, start, start + f.after, f)
            self.wfile.flush()
            f.fn()
            self._send_span(data, start + f.after, start + length, f)
        else:
            self._send_span(data, start, start + length, f)

    def _send_span(self, data, begin, stop, fault):
        """Write blob bytes [begin, stop) in chunks, so a cut lands mid-body as on a network."""
        pos = begin
        while pos < stop:
            chunk = data[pos : min(stop, pos + CHUNK)]
            if fault is not None and fault.kind == "corrupt" and pos <= fault.at < pos + len(chunk):
                chunk = bytearray(chunk)
                chunk[fault.at - pos] ^= 0xFF
            self.entry["bytes_sent"] += len(chunk)  # before the write: see FakeRegistry.log
            self.wfile.write(chunk)
            pos += len(chunk)
            rate = self.server.registry.rate
            if rate:
                time.sleep(len(chunk) / rate)

    def _abort(self, rst):
        # FIN (the default) guarantees the client receives every byte sent before the cut; an
        # RST may discard what is still in its receive buffer, so exact counts are not promised.
        self.close_connection = True
        if rst:
            # Linger on, timeout 0: close() resets the connection instead of a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # Push.

    def _uploads(self, reg, ns, model, upload_id, query, body):
        name = f"{ns}/{model}"
        if self.command == "POST" and upload_id == "":
            return self._start_upload(reg, ns, model, query, body)
        up = reg._uploads.get(upload_id)
        if up is None or up.name != name:
            return self._error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        next_url = f"/v2/{name}/blobs/uploads/{upload_id}"
        if self.command == "PATCH":
            try:
                offset = self._content_range(len(body))
            except ValueError:
                return self._error(400, "BLOB_UPLOAD_INVALID", "Content-Range does not match")
            if reg.redirect_uploads and self.headers.get("X-Redirect-Uploads"):
                # Like the real registry: the part goes to a storage URL instead; the PATCH body
                # is dropped, and Docker-Upload-Location names the next upload URL.
                target = (f"http://{reg.redirect_host}:{reg.port}/upload-direct/{upload_id}"
                          f"?offset={offset if offset is not None else len(up.data)}")
                return self._reply(307, headers={"Location": target,
                                                 "Docker-Upload-Location": next_url})
            with reg._lock:
                up.write(offset, body)
                size = len(up.data)
            return self._reply(202, headers={"Location": next_url,
                                             "Docker-Upload-Location": next_url,
                                             "Docker-Upload-UUID": upload_id,
                                             "Range": f"0-{max(size - 1, 0)}"})
        if self.command == "PUT":
            try:
                offset = self._content_range(len(body))
            except ValueError:
                return self._error(400, "BLOB_UPLOAD_INVALID", "Content-Range does not match")
            if body:
                with reg._lock:
                    up.write(offset, body)
            return self._finish_upload(reg, ns, model, upload_id, query)
        if self.command == "DELETE":
            reg._uploads.pop(upload_id, None)
            return self._reply(204)
        return self._error(405, "UNSUPPORTED", "method not allowed")

    def _start_upload(self, reg, ns, model, query, body):
        mount = query.get("mount", [None])[0]
        if mount is not None and mount in reg.blobs:
            return self._reply(201, headers={"Location": f"/v2/{ns}/{model}/blobs/{mount}",
                                             "Docker-Content-Digest": mount})
        upload_id = str(uuid.uuid4())
        with reg._lock:
            reg._uploads[upload_id] = _Upload(f"{ns}/{model}")
        if body or "digest" in query:  # monolithic upload: POST carries the whole blob
            reg._uploads[upload_id].write(0, body)
            return self._finish_upload(reg, ns, model, upload_id, query)
        url = f"/v2/{ns}/{model}/blobs/uploads/{upload_id}"
        self._reply(202, headers={"Location": url, "Docker-Upload-Location": url,
                                  "Docker-Upload-UUID": upload_id, "Range": "0-0"})

    def _finish_upload(self, reg, ns, model, upload_id, query):
        want = query.get("digest", [""])[0]
        with reg._lock:
            up = reg._uploads.pop(upload_id)
        got = digest_of(up.data)
        if not DIGEST_RE.match(want) or got != want:
            return self._error(400, "DIGEST_INVALID",
                               f"provided digest did not match uploaded content: "
                               f"want {want or '(none)'}, got {got}")
        reg.add_blob(up.data)
        self._reply(201, headers={"Location": f"/v2/{ns}/{model}/blobs/{got}",
                                  "Docker-Content-Digest": got})

    def _upload_direct(self, reg, upload_id, query, body):
        up = reg._uploads.get(upload_id)
        if up is None:
            return self._error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        try:
            offset = int(query.get("offset", ["0"])[0])
        except ValueError:
            return self._error(400, "BLOB_UPLOAD_INVALID", "bad offset")
        with reg._lock:
            up.write(offset, body)
        self._reply(200, headers={"ETag": '"%s"' % hashlib.md5(body).hexdigest()})

    def _content_range(self, body_len):
        """Offset from `Content-Range: a-b` (Ollama sends no `bytes ` prefix; either is taken),
        None without the header; ValueError when b-a+1 is not the body length."""
        header = self.headers.get("Content-Range")
        if header is None:
            return None
        m = re.fullmatch(r"\s*(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?\s*", header)
        if not m or int(m.group(2)) - int(m.group(1)) + 1 != body_len:
            raise ValueError(header)
        return int(m.group(1))


def parse_name(name):
    """`[ns/]model[:tag]` -> (ns, model, tag) with Ollama's defaults."""
    repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    ns, _, model = repo.rpartition("/")
    return ns or "library", model, tag or "latest"


def main():
    ap = argparse.ArgumentParser(description="Serve GGUF files over the Ollama registry protocol.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5000)
    ap.add_argument("--model", action="append", default=[], metavar="NS/MODEL:TAG=FILE.gguf")
    ap.add_argument("--token", help="require this bearer token on /v2/ (GET /token hands it out)")
    ap.add_argument("--no-redirect", action="store_true", help="serve blobs on /v2/ directly")
    ap.add_argument("--case-insensitive-tags", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each request")
    ap.add_argument("--rate", type=int, metavar="BYTES", help="blob bytes per second per request")
    args = ap.parse_args()

    reg = FakeRegistry(args.host, args.port)
    reg.require_token = args.token
    reg.redirect_blobs = not args.no_redirect
    reg.case_insensitive_tags = args.case_insensitive_tags
    reg.verbose = args.verbose
    reg.rate = args.rate
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep:
            ap.error(f"--model {spec!r}: expected NS/MODEL:TAG=FILE")
        ns, model, tag = parse_name(name)
        with open(path, "rb") as f:  # mapped, so a multi-GB file is not read into memory
            try:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # an empty file cannot be mapped
                data = b""
        reg.add_model(ns, model, tag, layers=[(MODEL_MEDIA, data)])
        print(f"serving {ns}/{model}:{tag} ({len(data)} bytes): "
              f"ollama pull --insecure {args.host}:{reg.port}/{ns}/{model}:{tag}", flush=True)
    print(f"fake registry on {reg.url} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        reg.stop()


if __name__ == "__main__":
    main()
