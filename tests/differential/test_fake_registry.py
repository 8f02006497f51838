"""Self-test of fake_registry.py, the in-memory Ollama-protocol registry that pull/push tests run
against: manifests (tags, case, `latest` alias), blob HEAD, the 307 to a direct URL on another
hostname and exact 206 answers to ranges there, bearer-token auth (and Ollama's signed token
requests), chunked push with digest
checks, each injected fault (drop, corrupt, stall, status, manifest failures) firing exactly as
configured, the request log, and the script mode. Needs no hearth binary."""
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from fake_registry import MANIFEST_MEDIA, MODEL_MEDIA, FakeRegistry, digest_of
from harness import Checker
from serve_util import free_port


def request(port, method, path, headers=None, body=None, conn=None, timeout=10):
    """(status, headers, body); `conn` reuses a keep-alive connection."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, r.headers, data


def error_code(body):
    try:
        return json.loads(body)["errors"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def check_pull_side(c, reg, blob, digest, manifest):
    port = reg.port
    total = len(blob)

    # Manifests: exact bytes and media type, 404 shape, tag case, `latest` alias.
    st, h, body = request(port, "GET", "/v2/library/tiny/manifests/Q4_K_M")
    c.check(st == 200 and body == manifest and h["Content-Type"] == MANIFEST_MEDIA,
            f"manifest GET -> {st} {h['Content-Type']}")
    st, h, body = request(port, "HEAD", "/v2/library/tiny/manifests/Q4_K_M")
    c.check(st == 200 and body == b"" and int(h["Content-Length"]) == len(manifest),
            f"manifest HEAD -> {st} len {h['Content-Length']}")
    st, _, body = request(port, "GET", "/v2/library/tiny/manifests/nope")
    c.check(st == 404 and json.loads(body) ==
            {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]},
            f"unknown manifest -> {st} {body!r}")
    st, _, _ = request(port, "GET", "/v2/library/tiny/manifests/q4_k_m")
    c.check(st == 404, f"tag case matters by default: {st}")
    reg.case_insensitive_tags = True
    st, _, body = request(port, "GET", "/v2/library/tiny/manifests/q4_k_m")
    c.check(st == 200 and body == manifest, f"case-insensitive tag -> {st}")
    reg.case_insensitive_tags = False
    st, _, _ = request(port, "GET", "/v2/library/tiny/manifests/latest")
    c.check(st == 404, f"latest before alias -> {st}")
    reg.alias_latest("library", "tiny", "Q4_K_M")
    st, _, body = request(port, "GET", "/v2/library/tiny/manifests/latest")
    c.check(st == 200 and body == manifest, f"latest alias -> {st}")
    st, _, body = request(port, "GET", f"/v2/library/tiny/manifests/{digest_of(manifest)}")
    c.check(st == 200 and body == manifest, f"manifest by digest -> {st}")

    # Blob HEAD: size, no body, 404 when absent.
    st, h, body = request(port, "HEAD", f"/v2/library/tiny/blobs/{digest}")
    c.check(st == 200 and body == b"" and int(h["Content-Length"]) == total,
            f"blob HEAD -> {st} len {h['Content-Length']}")
    st, _, _ = request(port, "HEAD", "/v2/library/tiny/blobs/sha256:" + "0" * 64)
    c.check(st == 404, f"absent blob HEAD -> {st}")

    # Blob GET: 307 to /direct/ on "localhost"; urllib follows it and gets the whole blob.
    st, h, _ = request(port, "GET", f"/v2/library/tiny/blobs/{digest}")
    want_loc = f"http://localhost:{port}/direct/{digest}"
    c.check(st == 307 and h["Location"] == want_loc, f"blob GET -> {st} {h['Location']}")
    reg.clear_log()
    with urllib.request.urlopen(f"{reg.url}/v2/library/tiny/blobs/{digest}", timeout=10) as r:
        c.check(r.status == 200 and r.read() == blob and r.url == want_loc,
                f"urllib through the redirect -> {r.status} {r.url}")
    hosts = [e["host"] for e in reg.log]
    c.check(hosts == [f"127.0.0.1:{port}", f"localhost:{port}"], f"hosts followed: {hosts}")

    # Ranges on the direct URL, several on one keep-alive connection.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for rng, (a, b) in (("bytes=0-99", (0, 99)), ("bytes=1000-", (1000, total - 1)),
                        ("bytes=-10", (total - 10, total - 1)),
                        (f"bytes=5-{total + 50}", (5, total - 1))):
        st, h, body = request(port, "GET", f"/direct/{digest}", {"Range": rng}, conn=conn)
        c.check(st == 206 and body == blob[a : b + 1]
                and h["Content-Range"] == f"bytes {a}-{b}/{total}"
                and int(h["Content-Length"]) == b - a + 1 and h["Accept-Ranges"] == "bytes",
                f"Range {rng} -> {st} {h['Content-Range']} {len(body)} B")
    st, h, body = request(port, "GET", f"/direct/{digest}", conn=conn)
    c.check(st == 200 and body == blob and "Content-Range" not in h, f"no Range -> {st}")
    st, h, body = request(port, "HEAD", f"/direct/{digest}", {"Range": "bytes=10-19"}, conn=conn)
    c.check(st == 206 and body == b"" and h["Content-Length"] == "10", f"ranged HEAD -> {st}")
    st, h, _ = request(port, "GET", f"/direct/{digest}", {"Range": f"bytes={total}-"}, conn=conn)
    c.check(st == 416 and h["Content-Range"] == f"bytes */{total}", f"Range past end -> {st}")
    st, _, body = request(port, "GET", f"/direct/{digest}", {"Range": "bytes=0-3"}, conn=conn)
    c.check(st == 206 and body == blob[:4], f"connection still usable after 416 -> {st}")
    conn.close()

    # Without redirects the blob path itself answers ranges.
    reg.redirect_blobs = False
    st, h, body = request(port, "GET", f"/v2/library/tiny/blobs/{digest}",
                          {"Range": "bytes=7-70"})
    c.check(st == 206 and body == blob[7:71] and "Location" not in h,
            f"direct blob path Range -> {st}")
    reg.redirect_blobs = True

    # Accounting.
    reg.clear_log()
    request(port, "GET", f"/direct/{digest}", {"Range": "bytes=0-999"})
    request(port, "GET", f"/direct/{digest}", {"Range": "bytes=1000-1499"})
    c.check(reg.bytes_served(digest) == 1500, f"bytes_served {reg.bytes_served(digest)}")
    spans = [e["span"] for e in reg.entries(digest=digest)]
    c.check(spans == [(0, 999), (1000, 1499)], f"logged spans {spans}")
    print(f"pull side: manifests, tags, HEAD, redirect, ranges, accounting ({c.checks} checks)")


def check_faults(c, reg, blob, digest):
    port = reg.port
    path = f"/direct/{digest}"

    # drop: headers plus exactly `after` bytes, then EOF; once only.
    f = reg.fault(digest, "drop", after=3000)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Range": "bytes=100-"})
    r = conn.getresponse()
    got = None
    try:
        r.read()
    except http.client.IncompleteRead as e:
        got = e.partial
    c.check(r.status == 206 and got == blob[100:3100], f"drop: got {got and len(got)} B")
    conn.close()
    st, _, body = request(port, "GET", path, {"Range": "bytes=100-"})
    c.check(f.fired == 1 and st == 206 and body == blob[100:], f"drop spent: {f}, {st}")
    # A drop after the end of the range cannot fire, so it is not counted.
    f = reg.fault(digest, "drop", after=500)
    st, _, body = request(port, "GET", path, {"Range": "bytes=0-99"})
    c.check(f.fired == 0 and body == blob[:100], f"drop past the range: {f}")
    reg.clear_faults()
    # rst: the connection is reset instead of closed.
    reg.fault(digest, "drop", after=10, rst=True)
    try:
        request(port, "GET", path)
        c.check(False, "drop rst: request completed")
    except (http.client.IncompleteRead, ConnectionError) as e:
        c.check(True, "")
        print(f"  drop rst -> {type(e).__name__}")

    # corrupt: only a range holding the offset flips it (and counts), exactly one byte.
    f = reg.fault(digest, "corrupt", at=5000)
    st, _, body = request(port, "GET", path, {"Range": "bytes=0-4999"})
    c.check(f.fired == 0 and body == blob[:5000], f"corrupt outside range: {f}")
    st, _, body = request(port, "GET", path, {"Range": "bytes=4000-5999"})
    diff = [i + 4000 for i in range(len(body)) if body[i] != blob[4000 + i]]
    c.check(f.fired == 1 and diff == [5000] and body[1000] == blob[5000] ^ 0xFF,
            f"corrupt flips offset 5000 only: {diff}")
    st, _, body = request(port, "GET", path, {"Range": "bytes=4000-5999"})
    c.check(body == blob[4000:6000], "corrupt spent")

    # status: twice 503, then data.
    f = reg.fault(digest, "status", times=2, code=503)
    codes = [request(port, "GET", path, {"Range": "bytes=0-9"})[0] for _ in range(3)]
    c.check(codes == [503, 503, 206] and f.fired == 2, f"status x2: {codes}")
    # HEADs and the redirecting GET are not data GETs: a fault waits for the data.
    f = reg.fault(digest, "status", code=500)
    st1 = request(port, "HEAD", f"/v2/library/tiny/blobs/{digest}")[0]
    st2 = request(port, "GET", f"/v2/library/tiny/blobs/{digest}")[0]
    st3 = request(port, "GET", path)[0]
    c.check((st1, st2, st3, f.fired) == (200, 307, 500, 1), f"status targets data: {st1, st2, st3}")

    # range_start picks one part of a parallel download.
    f = reg.fault(digest, "status", code=500, range_start=4096)
    st1 = request(port, "GET", path, {"Range": "bytes=0-4095"})[0]
    st2 = request(port, "GET", path, {"Range": "bytes=4096-8191"})[0]
    c.check((st1, st2, f.fired) == (206, 500, 1), f"range_start: {st1} {st2}")

    # stall: `after` bytes, then silence; a client timing out sees exactly those bytes, other
    # requests are served meanwhile, and a patient client gets the rest, correct.
    f = reg.fault(digest, "stall", after=2048, seconds=2)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    conn.request("GET", path, headers={"Range": "bytes=0-9999"})
    r = conn.getresponse()
    head = r.read(2048)
    timed_out = False
    try:
        r.read(1)
    except TimeoutError:
        timed_out = True
    c.check(head == blob[:2048] and timed_out and f.fired == 1,
            f"stall: {len(head)} B then timeout={timed_out}")
    t1 = time.monotonic()
    st, _, body = request(port, "GET", path, {"Range": "bytes=0-9999"})
    c.check(st == 206 and body == blob[:10000] and time.monotonic() - t1 < 1,
            f"served during a stall in {time.monotonic() - t1:.2f} s")
    conn.close()
    reg.fault(digest, "stall", after=100, seconds=1)
    t0 = time.monotonic()
    st, _, body = request(port, "GET", path, timeout=5)
    dt = time.monotonic() - t0
    c.check(st == 200 and body == blob and 0.9 < dt < 3, f"patient client after stall {dt:.2f} s")

    # Manifest failures.
    f = reg.fail_manifest(500, times=2)
    codes = [request(port, "GET", "/v2/library/tiny/manifests/Q4_K_M")[0] for _ in range(3)]
    c.check(codes == [500, 500, 200] and f.fired == 2, f"fail_manifest x2: {codes}")

    faults = [e["fault"] for e in reg.log if e["fault"]]
    c.check(faults.count("drop") == 2 and faults.count("corrupt") == 1, f"log faults {faults}")
    print(f"faults: drop, drop rst, corrupt, status, range_start, stall, manifest "
          f"({c.checks} checks)")


def check_auth(c, reg, digest):
    port = reg.port
    reg.require_token = "secret-token"
    st, h, body = request(port, "GET", "/v2/library/tiny/manifests/Q4_K_M")
    want = (f'Bearer realm="http://127.0.0.1:{port}/token",service="fake-registry",'
            f'scope="repository:library/tiny:pull"')
    c.check(st == 401 and h["WWW-Authenticate"] == want and error_code(body) == "UNAUTHORIZED",
            f"no token -> {st} {h['WWW-Authenticate']}")
    st, h, _ = request(port, "POST", "/v2/library/tiny/blobs/uploads/")
    c.check(st == 401 and h["WWW-Authenticate"].endswith(':pull,push"'), f"push scope {st}")
    # The client's side of the dance: ask the realm with service and scope, then retry.
    q = "service=fake-registry&scope=repository%3Alibrary%2Ftiny%3Apull&ts=1&nonce=abc"
    st, _, body = request(port, "GET", f"/token?{q}", {"Authorization": "pubkey:signature"})
    tok = json.loads(body)["token"]
    last = reg.token_requests[-1]
    c.check(st == 200 and tok == "secret-token" and last["auth"] == "pubkey:signature"
            and last["params"]["scope"] == "repository:library/tiny:pull" and last["query"] == q,
            f"token endpoint -> {st} {last}")
    st, _, _ = request(port, "GET", "/v2/library/tiny/manifests/Q4_K_M",
                       {"Authorization": "Bearer wrong"})
    c.check(st == 401, f"wrong token -> {st}")
    auth = {"Authorization": f"Bearer {tok}"}
    st, _, _ = request(port, "GET", "/v2/library/tiny/manifests/Q4_K_M", auth)
    c.check(st == 200, f"with token -> {st}")
    st, h, _ = request(port, "GET", f"/v2/library/tiny/blobs/{digest}", auth)
    c.check(st == 307, f"blob with token -> {st}")
    st, _, _ = request(port, "GET", f"/direct/{digest}", {"Range": "bytes=0-0"})
    c.check(st == 206, f"direct URL needs no token -> {st}")
    c.check(reg.entries(status=401)[-1]["auth"] == "Bearer wrong", "log records Authorization")
    reg.require_token = None
    print(f"auth: challenge, token endpoint, bearer ({c.checks} checks)")


def check_signed_token(c, reg):
    """The token endpoint with authorized_keys: only a request signed as Ollama signs it, by a
    known key, with a fresh ts and an unused nonce gets a token."""
    import base64
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    def keypair():
        k = Ed25519PrivateKey.generate()
        raw = k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + raw
        return k, base64.b64encode(blob).decode()

    port = reg.port
    good, good_pub = keypair()
    other, other_pub = keypair()
    reg.require_token = "signed-token"
    reg.authorized_keys = [f"ssh-ed25519 {good_pub} me@host"]
    empty = base64.b64encode(hashlib.sha256(b"").hexdigest().encode()).decode()

    def ask(key, pub, ts=None, nonce=None, tamper=False):
        nonce = nonce or base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        q = (f"nonce={nonce}&scope=repository%3Alibrary%2Ftiny%3Apull&service=fake-registry"
             f"&ts={int(time.time()) if ts is None else ts}")
        path = f"/token?{q}"
        sig = key.sign(f"GET,http://127.0.0.1:{port}{path},{empty}".encode())
        if tamper:
            path = path.replace("pull", "push")
        auth = f"{pub}:{base64.b64encode(sig).decode()}"
        st, _, body = request(port, "GET", path, {"Authorization": auth})
        return st, body, nonce

    st, body, nonce = ask(good, good_pub)
    c.check(st == 200 and json.loads(body)["token"] == "signed-token"
            and reg.token_requests[-1]["refused"] is None, f"signed token request -> {st} {body}")
    st, body, _ = ask(good, good_pub, nonce=nonce)
    c.check(st == 401 and b"replayed nonce" in body, f"replayed nonce -> {st} {body}")
    st, body, _ = ask(other, other_pub)
    c.check(st == 401 and b"unknown public key" in body, f"unknown key -> {st} {body}")
    st, body, _ = ask(other, good_pub)
    c.check(st == 401 and b"does not verify" in body, f"signed by another key -> {st} {body}")
    st, body, _ = ask(good, good_pub, tamper=True)
    c.check(st == 401 and b"does not verify" in body, f"URL changed after signing -> {st} {body}")
    st, body, _ = ask(good, good_pub, ts=int(time.time()) - 3600)
    c.check(st == 401 and b"stale ts" in body, f"old ts -> {st} {body}")
    st, body, _ = ask(good, good_pub, nonce="short")
    c.check(st == 401 and b"nonce" in body, f"short nonce -> {st} {body}")
    st, _, body = request(port, "GET", "/token?service=fake-registry&scope=x&ts=1&nonce=a")
    c.check(st == 401 and b"not signed" in body, f"unsigned -> {st} {body}")
    reg.authorized_keys = None
    reg.require_token = None
    print(f"auth: signed token requests ({c.checks} checks)")


def check_push(c, reg):
    port = reg.port
    data = os.urandom(100_000)
    digest = digest_of(data)
    config = b'{"model_format":"gguf"}'

    st, h, _ = request(port, "HEAD", f"/v2/me/pushed/blobs/{digest}")
    c.check(st == 404, f"not there before push -> {st}")
    st, h, _ = request(port, "POST", "/v2/me/pushed/blobs/uploads/")
    loc = h["Location"]
    c.check(st == 202 and loc.startswith("/v2/me/pushed/blobs/uploads/")
            and h["Docker-Upload-Location"] == loc, f"start upload -> {st} {loc}")
    # Parts out of order, with and without the `bytes ` prefix, one chunked-encoded.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    st, h, _ = request(port, "PATCH", loc, {"Content-Range": "60000-99999"}, data[60000:],
                       conn=conn)
    c.check(st == 202 and h["Location"] == loc, f"PATCH tail part -> {st}")
    st, h, _ = request(port, "PATCH", loc, {"Content-Range": "bytes 0-29999"}, data[:30000],
                       conn=conn)
    c.check(st == 202, f"PATCH with bytes prefix -> {st}")
    conn.request("PATCH", loc, body=iter([data[30000:45000], data[45000:60000]]),
                 headers={"Content-Range": "30000-59999"}, encode_chunked=True)
    r = conn.getresponse()
    r.read()
    c.check(r.status == 202, f"chunked PATCH -> {r.status}")
    st, _, body = request(port, "PATCH", loc, {"Content-Range": "0-9"}, b"12345", conn=conn)
    c.check(st == 400 and error_code(body) == "BLOB_UPLOAD_INVALID",
            f"Content-Range length mismatch -> {st}")
    st, _, body = request(port, "PUT", f"{loc}?digest=sha256:{'1' * 64}", conn=conn)
    c.check(st == 400 and error_code(body) == "DIGEST_INVALID", f"wrong digest -> {st}")
    c.check(digest not in reg.blobs, "wrong digest stores nothing")
    conn.close()

    # Again, finishing with a last body chunk and an etag, as Ollama sends it.
    _, h, _ = request(port, "POST", "/v2/me/pushed/blobs/uploads/")
    loc = h["Location"]
    request(port, "PATCH", loc, {"Content-Range": "0-49999"}, data[:50000])
    st, h, _ = request(port, "PUT", f"{loc}?digest={digest}&etag=abc-2",
                       {"Content-Range": "50000-99999"}, data[50000:])
    c.check(st == 201 and h["Docker-Content-Digest"] == digest and reg.blobs.get(digest) == data,
            f"finish upload -> {st}")
    st, h, _ = request(port, "HEAD", f"/v2/me/pushed/blobs/{digest}")
    c.check(st == 200 and int(h["Content-Length"]) == len(data), f"pushed blob HEAD -> {st}")
    st, _, _ = request(port, "PUT", f"{loc}?digest={digest}")
    c.check(st == 404, f"finished upload URL is gone -> {st}")

    # Mount: 201 when the blob is there, else an ordinary upload.
    st, h, _ = request(port, "POST", f"/v2/me/other/blobs/uploads/?mount={digest}&from=me/pushed")
    c.check(st == 201 and h["Docker-Content-Digest"] == digest, f"mount present -> {st}")
    st, h, _ = request(port, "POST",
                       f"/v2/me/other/blobs/uploads/?mount=sha256:{'2' * 64}&from=me/pushed")
    c.check(st == 202 and "Location" in h, f"mount absent -> {st}")

    # Upload redirects (X-Redirect-Uploads): the part goes to the 307 target by PUT.
    reg.redirect_uploads = True
    _, h, _ = request(port, "POST", "/v2/me/redir/blobs/uploads/")
    loc = h["Location"]
    small = b"redirected part"
    st, h, _ = request(port, "PATCH", loc,
                       {"Content-Range": f"0-{len(small) - 1}", "X-Redirect-Uploads": "1"}, small)
    target = h["Location"]
    c.check(st == 307 and target.startswith(f"http://localhost:{port}/upload-direct/")
            and h["Docker-Upload-Location"] == loc, f"PATCH redirect -> {st} {target}")
    req = urllib.request.Request(target, data=small, method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        c.check(r.status == 200 and r.headers["ETag"] == f'"{hashlib.md5(small).hexdigest()}"',
                f"PUT to redirect target -> {r.status}")
    st, _, _ = request(port, "PUT", f"{loc}?digest={digest_of(small)}")
    c.check(st == 201 and reg.blobs.get(digest_of(small)) == small, f"redirected finish -> {st}")
    reg.redirect_uploads = False

    # Manifests: refused while a blob is missing, then stored byte for byte.
    cfg_digest = digest_of(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_MEDIA,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": cfg_digest, "size": len(config)},
        "layers": [{"mediaType": MODEL_MEDIA, "digest": digest, "size": len(data)}],
    }, indent=1).encode()
    ct = {"Content-Type": MANIFEST_MEDIA}
    st, _, body = request(port, "PUT", "/v2/me/pushed/manifests/v1", ct, manifest)
    c.check(st == 400 and error_code(body) == "BLOB_UNKNOWN", f"manifest, config missing -> {st}")
    st, _, body = request(port, "PUT", "/v2/me/pushed/manifests/v1", ct, b"{not json")
    c.check(st == 400 and error_code(body) == "MANIFEST_INVALID", f"bad manifest -> {st}")
    st, h, _ = request(port, "POST", f"/v2/me/pushed/blobs/uploads/?digest={cfg_digest}",
                       body=config)
    c.check(st == 201 and reg.blobs.get(cfg_digest) == config, f"monolithic upload -> {st}")
    st, h, _ = request(port, "PUT", "/v2/me/pushed/manifests/v1", ct, manifest)
    c.check(st == 201 and h["Docker-Content-Digest"] == digest_of(manifest), f"manifest -> {st}")
    st, _, body = request(port, "GET", "/v2/me/pushed/manifests/v1")
    c.check(st == 200 and body == manifest and reg.manifests[("me", "pushed", "v1")] == manifest,
            f"pushed manifest served as sent -> {st}")
    print(f"push: uploads, parts, digests, mount, upload redirect, manifests ({c.checks} checks)")


def check_stop_during_stall(c, blob):
    reg = FakeRegistry()
    digest = reg.add_blob(blob)
    reg.fault(digest, "stall", after=10, seconds=60)
    done = threading.Event()

    def stalled():
        try:
            request(reg.port, "GET", f"/direct/{digest}", timeout=30)
        except (http.client.HTTPException, OSError):
            pass
        done.set()

    threading.Thread(target=stalled, daemon=True).start()
    time.sleep(0.3)
    # An idle keep-alive connection too: stop() must not wait for its client.
    idle = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=10)
    idle.request("GET", f"/direct/{digest}", headers={"Range": "bytes=0-0"})
    idle.getresponse().read()
    t0 = time.monotonic()
    reg.stop()
    dt = time.monotonic() - t0
    c.check(dt < 3 and done.wait(3), f"stop() during a 60 s stall took {dt:.2f} s")
    try:
        socket.create_connection(("127.0.0.1", reg.port), timeout=1).close()
        c.check(False, "port still accepting after stop()")
    except OSError:
        pass
    idle.close()
    print(f"stop() during a stall: {dt:.2f} s")


def check_script(c, blob):
    port = free_port()
    with tempfile.NamedTemporaryFile(suffix=".gguf", delete=False) as f:
        f.write(blob)
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.Popen([sys.executable, os.path.join(here, "fake_registry.py"), "--port",
                          str(port), "--model", f"hf-org/Tiny-GGUF:Q8_0={f.name}"],
                         stdout=subprocess.PIPE, text=True)
    try:
        lines = [p.stdout.readline(), p.stdout.readline()]
        c.check("hf-org/Tiny-GGUF:Q8_0" in lines[0] and "fake registry on" in lines[1],
                f"script banner {lines}")
        st, _, body = request(port, "GET", "/v2/hf-org/Tiny-GGUF/manifests/Q8_0")
        m = json.loads(body)
        layer = m["layers"][0]
        cfg = m["config"]
        c.check(st == 200 and layer == {"mediaType": MODEL_MEDIA, "digest": digest_of(blob),
                                        "size": len(blob)}, f"script manifest {m}")
        _, _, config = request(port, "GET", f"/direct/{cfg['digest']}")
        c.check(json.loads(config) == {"model_format": "gguf", "model_family": "",
                                       "file_type": ""}, f"script config {config!r}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/hf-org/Tiny-GGUF/blobs/"
                                    f"{layer['digest']}", timeout=10) as r:
            c.check(r.read() == blob, "script serves the file through the redirect")
    finally:
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=10)
        os.unlink(f.name)
    c.check(rc == 0, f"script exit on SIGINT: {rc}")
    print("script mode: --model serves a GGUF file")


def main():
    t0 = time.monotonic()
    c = Checker("fake-registry")
    blob = os.urandom(300_000)
    with FakeRegistry() as reg:
        manifest = reg.add_model("library", "tiny", "Q4_K_M", layers=[(MODEL_MEDIA, blob)])
        m = json.loads(manifest)
        digest = digest_of(blob)
        c.check(m["layers"] == [{"mediaType": MODEL_MEDIA, "digest": digest, "size": len(blob)}]
                and m["config"]["digest"] in reg.blobs and m["schemaVersion"] == 2,
                f"add_model manifest {m}")
        check_pull_side(c, reg, blob, digest, manifest)
        check_faults(c, reg, blob, digest)
        check_auth(c, reg, digest)
        check_signed_token(c, reg)
        check_push(c, reg)
        st = request(reg.port, "DELETE", "/v2/library/tiny/manifests/Q4_K_M")[0]
        c.check(st == 405, f"unsupported method -> {st}")
        c.check(all(e["status"] for e in reg.log), "every logged request has a status")
        c.check(reg.errors == [], f"server-side exceptions: {reg.errors}")
    check_stop_during_stall(c, blob)
    check_script(c, blob)
    print(f"done in {time.monotonic() - t0:.1f} s")
    c.finish()


if __name__ == "__main__":
    main()
