"""A running `hearth serve` against the attacks and accidents of the hardening issue, each class
with the check that failed before the fix:
- browsers: a foreign Origin is refused (403) before anything happens, even a "simple" POST;
  a foreign Host (DNS rebinding) is refused while listening on loopback; localhost origins and
  HEARTH_ORIGINS get CORS headers and answered preflights;
- /api/create `from` a server-side path copies only a GGUF, answers the same for a missing file,
  a non-GGUF file and a FIFO (no oracle), and leaves nothing in the store; blobs are 0600;
- uploads are hashed as they arrive: a wrong digest leaves no file, an existing blob or an
  oversize Content-Length is answered before the body is sent, a stalled upload is dropped
  and its temporary file removed;
- the store is cleaned at start (temporaries, unreferenced old blobs) and by `hearth prune`;
- malformed, oversize and stalled requests get 400 / 431 / 408 JSON answers, not a reset;
- options out of range are a 400 naming the option (a billion-entry repeat_last_n used to be
  allocated);
- /api/version answers while a large upload streams in (the upload used to be hashed on the
  network thread after it arrived)."""
import hashlib
import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import FIXTURES, HEARTH, Checker  # noqa: E402
from serve_util import Server, put_model, repeated_blob  # noqa: E402

MODEL = os.path.join(FIXTURES, "qwen3-F16.gguf")
OTHER = os.path.join(FIXTURES, "qwen3-Q8_0.gguf")  # not yet in the store when created from a path


def raw(port, data, read_timeout=10.0, shutdown=False):
    """Sends raw bytes, returns (status, headers dict, body) of the first answer or None."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        s.sendall(data)
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, headers, rest[:n].decode("utf-8", "replace")
    except (socket.timeout, ConnectionResetError):
        return None
    finally:
        s.close()


def req(method, path, host="127.0.0.1", origin=None, body=b"", extra=""):
    h = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if origin:
        h += f"Origin: {origin}\r\n"
    h += extra
    h += f"Content-Length: {len(body)}\r\n\r\n"
    return h.encode() + body


def upload_head(port, digest, length_header):
    """Sends only the head of a blob upload; returns the start of the answer (the server must
    answer these before any of the body arrives)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        conn.sendall(f"POST /api/blobs/{digest} HTTP/1.1\r\nHost: localhost\r\n"
                     f"{length_header}\r\n\r\n".encode())
        return conn.recv(4096).decode("latin-1")
    finally:
        conn.close()


def is_json_error(body):
    try:
        return "error" in json.loads(body)
    except ValueError:
        return False


def store_files(models):
    out = set()
    for d, _, files in os.walk(models):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), models))
    return out


def check_browser_rules(c, s):
    copy = json.dumps({"source": "tiny", "destination": "stolen"}).encode()
    # A "simple" cross-origin POST (text/plain, no preflight) from a foreign page.
    r = raw(s.port, req("POST", "/api/copy", origin="https://evil.example", body=copy,
                        extra="Content-Type: text/plain\r\n"))
    c.check(r and r[0] == 403 and is_json_error(r[2]), f"foreign origin: {r}")
    names = [m["name"] for m in s.json("GET", "/api/tags")[1]["models"]]
    c.check("stolen:latest" not in names, "a refused cross-origin request still ran")
    # DNS rebinding: the attacker's name resolves to 127.0.0.1; Host carries it.
    r = raw(s.port, req("GET", "/api/tags", host="attacker.example:11434"))
    c.check(r and r[0] == 403 and is_json_error(r[2]), f"foreign host: {r}")
    r = raw(s.port, req("GET", "/api/tags", host="localhost:11434"))
    c.check(r and r[0] == 200, f"localhost host: {r}")
    # A local web UI: allowed, with CORS headers; its preflight answered.
    r = raw(s.port, req("GET", "/api/tags", origin="http://localhost:3000"))
    c.check(r and r[0] == 200 and r[1].get("access-control-allow-origin") == "http://localhost:3000",
            f"localhost origin CORS: {r and r[1]}")
    r = raw(s.port, req("OPTIONS", "/api/chat", origin="http://127.0.0.1:8080",
                        extra="Access-Control-Request-Method: POST\r\n"
                              "Access-Control-Request-Headers: content-type\r\n"))
    c.check(r and r[0] == 204 and "POST" in r[1].get("access-control-allow-methods", "")
            and "Content-Type" in r[1].get("access-control-allow-headers", ""),
            f"preflight: {r}")
    r = raw(s.port, req("OPTIONS", "/api/chat", origin="https://evil.example",
                        extra="Access-Control-Request-Method: POST\r\n"))
    c.check(r and r[0] == 403, f"foreign preflight: {r and r[0]}")
    # Listed in HEARTH_ORIGINS (the server under test sets it).
    r = raw(s.port, req("GET", "/api/version", origin="https://ui.example.org"))
    c.check(r and r[0] == 200 and r[1].get("access-control-allow-origin") == "https://ui.example.org",
            f"HEARTH_ORIGINS: {r}")


def check_create_from_path(c, s, tmp):
    before = store_files(s.models)
    secret = os.path.join(tmp, "secret.txt")
    with open(secret, "wb") as f:
        f.write(b"password=hunter2\n")
    fifo = os.path.join(tmp, "pipe.gguf")
    os.mkfifo(fifo)
    answers = {}
    for label, path in (("missing", os.path.join(tmp, "nope.gguf")), ("text file", secret),
                        ("fifo", fifo), ("directory", tmp)):
        st, body = s.json("POST", "/api/create", {"model": "x", "from": path, "stream": False},
                          timeout=20)
        answers[label] = (st, body.get("error", "").replace(path, "<path>") if isinstance(body, dict) else body)
    c.check(all(a[0] == 400 for a in answers.values()), f"create from bad paths: {answers}")
    c.check(len({a[1] for a in answers.values()}) == 1,
            f"create from a path answers differently for missing/non-GGUF files: {answers}")
    c.check(store_files(s.models) == before, "a refused create left files in the store: "
            f"{store_files(s.models) - before}")
    digest = "sha256:" + hashlib.sha256(b"password=hunter2\n").hexdigest()
    st, _, _ = s.request("HEAD", "/api/blobs/" + digest)
    c.check(st == 404, f"the refused file's content is a blob: {st}")
    # A GGUF path works; its blob is private to the store's owner.
    st, body = s.json("POST", "/api/create", {"model": "fromfile", "from": OTHER, "stream": False})
    c.check(st == 200, f"create from a GGUF path: {st} {body}")
    blob = os.path.join(s.models, "blobs",
                        "sha256-" + hashlib.sha256(open(OTHER, "rb").read()).hexdigest())
    c.check(os.path.exists(blob) and stat.S_IMODE(os.stat(blob).st_mode) == 0o600,
            f"blob mode: {oct(stat.S_IMODE(os.stat(blob).st_mode)) if os.path.exists(blob) else None}")


def check_uploads(c, s):
    data = os.urandom(3 << 20)
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    wrong = "sha256:" + hashlib.sha256(b"other").hexdigest()
    before = store_files(s.models)
    st, _, text = s.request("POST", "/api/blobs/" + wrong, raw=data)
    c.check(st == 400 and "mismatch" in text, f"wrong digest: {st} {text}")
    c.check(store_files(s.models) == before, "a rejected upload left files behind")
    st, _, _ = s.request("POST", "/api/blobs/" + good, raw=data)
    c.check(st == 201, f"upload: {st}")
    # Already present: answered from the head, the body is never needed.
    first = upload_head(s.port, good, f"Content-Length: {len(data)}")
    c.check(first.startswith("HTTP/1.1 200"), f"existing blob before the body: {first[:40]!r}")
    # Over HEARTH_MAX_UPLOAD (set to 8 MiB for this server): 413 before the body.
    first = upload_head(s.port, wrong, f"Content-Length: {64 << 20}")
    c.check(first.startswith("HTTP/1.1 413"), f"oversize upload: {first[:40]!r}")
    # Chunked past the limit: stopped with 413 once the limit is crossed.
    conn = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    conn.sendall(f"POST /api/blobs/{wrong} HTTP/1.1\r\nHost: localhost\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n".encode())
    piece = os.urandom(1 << 20)
    got = b""
    try:
        for _ in range(12):
            conn.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        got = conn.recv(4096)
    except (BrokenPipeError, ConnectionResetError):
        pass
    conn.close()
    c.check(got.startswith(b"HTTP/1.1 413") or got == b"", f"chunked oversize: {got[:40]!r}")
    # A stalled upload is dropped after HEARTH_READ_TIMEOUT and leaves no temporary file.
    conn = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    conn.sendall(f"POST /api/blobs/{wrong} HTTP/1.1\r\nHost: localhost\r\n"
                 "Content-Length: 1000000\r\n\r\n".encode() + b"x" * 1000)
    time.sleep(0.3)
    tmps = [f for f in os.listdir(os.path.join(s.models, "blobs")) if f.startswith(".tmp-")]
    c.check(len(tmps) == 1, f"an upload in progress has one temporary file: {tmps}")
    first = b""
    try:
        first = conn.recv(4096)
    except socket.timeout:
        pass
    conn.close()
    c.check(first.startswith(b"HTTP/1.1 408"), f"stalled upload: {first[:40]!r}")
    time.sleep(0.2)
    tmps = [f for f in os.listdir(os.path.join(s.models, "blobs")) if f.startswith(".tmp-")]
    c.check(not tmps, f"a stalled upload left {tmps}")


def check_http_errors(c, s):
    r = raw(s.port, b"GARBAGE\r\n\r\n")
    c.check(r and r[0] == 400 and is_json_error(r[2]), f"malformed request: {r}")
    r = raw(s.port, b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
    c.check(r and r[0] == 431 and is_json_error(r[2]), f"huge header: {r and r[:2]}")
    r = raw(s.port, b"POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000000\r\n\r\n")
    c.check(r and r[0] == 413 and is_json_error(r[2]), f"oversize body: {r}")
    # Stalls: a head or a body that stops coming gets 408 after HEARTH_READ_TIMEOUT (2 s here).
    r = raw(s.port, b"GET /api/tags HTTP/1.1\r\nHost: local", read_timeout=10)
    c.check(r and r[0] == 408 and is_json_error(r[2]), f"stalled head: {r}")
    r = raw(s.port, b"POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50\r\n\r\n{",
            read_timeout=10)
    c.check(r and r[0] == 408 and is_json_error(r[2]), f"stalled body: {r}")
    # An idle keep-alive connection is closed without an answer.
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    try:
        c.check(sock.recv(10) == b"", "idle connection closed quietly")
    except socket.timeout:
        c.check(False, "idle connection not closed")
    sock.close()
    c.check(s.alive(), "alive after bad HTTP")
    # HEAD then GET on one connection: the HEAD answer has no body (it used to carry one, read as
    # the start of the next answer).
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    try:
        conn.request("HEAD", "/")
        r = conn.getresponse()
        r.read()
        head_ok = r.status == 200 and r.getheader("Content-Length") == str(len("Ollama is running"))
        conn.request("GET", "/api/version")
        r = conn.getresponse()
        c.check(head_ok and r.status == 200 and "version" in json.loads(r.read()),
                "HEAD then GET on one connection")
    except (http.client.HTTPException, ValueError) as e:
        c.check(False, f"HEAD then GET on one connection: {e!r}")
    finally:
        conn.close()


def check_cli_modelfile(c, s, tmp):
    """`hearth create` with a Modelfile that is not UTF-8: an error naming the line (it used to
    abort with an uncaught JSON exception)."""
    mf = os.path.join(tmp, "Modelfile")
    with open(mf, "wb") as f:
        f.write(b"FROM " + MODEL.encode() + b'\nSYSTEM "caf\xff"\nTEMPLATE "{{ .Prompt }} \xc3"\n')
    out = subprocess.run([HEARTH, "create", "badmf", "-f", mf], capture_output=True,
                         env=dict(os.environ, HEARTH_HOST=f"127.0.0.1:{s.port}"))
    err = out.stderr.decode("utf-8", "replace")
    c.check(out.returncode == 1 and "line 2" in err and "UTF-8" in err,
            f"CLI create with invalid UTF-8: rc {out.returncode} {err!r}")


def check_options(c, s):
    for opts, name in (({"repeat_last_n": 2000000000}, "repeat_last_n"),
                       ({"num_ctx": 10 ** 12}, "num_ctx"), ({"top_p": 5}, "top_p"),
                       ({"temperature": -3}, "temperature")):
        body = json.dumps({"model": "tiny", "prompt": "hi", "stream": False, "options": opts})
        st, _, text = s.request("POST", "/api/generate", raw=body)
        c.check(st == 400 and name in text, f"option {opts}: {st} {text}")
    c.check(s.alive(), "alive after options")


def check_responsive_during_upload(c, s):
    """/api/version stays fast while 256 MB stream in (the hash runs as pieces arrive)."""
    size = 256 << 20
    piece, digest = repeated_blob(size)
    done = {}

    def upload():
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
        conn.putrequest("POST", "/api/blobs/" + digest)
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        for _ in range(size >> 20):
            conn.send(piece)
        done["status"] = conn.getresponse().status
        conn.close()

    t = threading.Thread(target=upload)
    t.start()
    worst = 0.0
    samples = 0
    while t.is_alive():
        t0 = time.monotonic()
        st, _, _ = s.request("GET", "/api/version")
        worst = max(worst, time.monotonic() - t0)
        samples += 1
        time.sleep(0.01)
    t.join()
    c.check(done.get("status") == 201, f"large upload: {done}")
    print(f"/api/version during a 256 MB upload: worst {worst * 1000:.1f} ms over {samples} "
          "requests")
    # Generous bound: this catches a network thread blocked for seconds, not scheduling noise.
    c.check(worst < 1.0, f"/api/version took {worst:.2f} s during an upload")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_fd_exhaustion(c):
    """Out of file descriptors: the accept loop waits instead of spinning, and recovers."""
    import resource

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    s = Server(preexec_fn=low_limit)
    socks = []
    try:
        for _ in range(100):
            try:
                socks.append(socket.create_connection(("127.0.0.1", s.port), timeout=2))
            except OSError:
                break
        time.sleep(0.5)
        t0 = cpu_seconds(s.proc.pid)
        time.sleep(2.0)
        used = cpu_seconds(s.proc.pid) - t0
        print(f"server CPU while out of descriptors: {used:.2f} s over 2 s")
        c.check("accept failed" in s.read_log(), "the server never ran out of descriptors")
        c.check(used < 0.5, f"accept loop spins when out of descriptors: {used:.2f} s CPU in 2 s")
        for k in socks:
            k.close()
        socks = []
        c.check(wait_for_alive(s), "server serves again once descriptors are free")
    finally:
        for k in socks:
            k.close()
        s.stop()


def wait_for_alive(s, seconds=10):
    t_end = time.time() + seconds
    while time.time() < t_end:
        try:
            if s.alive():
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def check_disk_room(c, s):
    """An upload larger than the free disk space: 507 before the body is sent (a full disk used
    to be found only after writing, and is an error of that one request)."""
    digest = "sha256:" + hashlib.sha256(b"big").hexdigest()
    first = upload_head(s.port, digest, f"Content-Length: {10 ** 15}")
    c.check(first.startswith("HTTP/1.1 507") and "disk space" in first,
            f"upload larger than the disk: {first[:80]!r}")


def check_disk_full(c, tmp):
    """A store on a small filesystem (a 6 MB tmpfs; needs root, as CI is): creating a model that
    does not fit is a 507 for that request, leaves no file behind, and the models already there
    keep working; an upload without a length on the full disk is refused at once."""
    mnt = os.path.join(tmp, "small-disk")
    os.makedirs(mnt)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt],
                                           capture_output=True).returncode != 0:
        print("disk-full check not run: mounting a tmpfs needs root")
        return
    try:
        models = os.path.join(mnt, "store")
        put_model(models, "tiny:latest", os.path.join(FIXTURES, "qwen3-Q4_K_M.gguf"))
        s = Server(models=models)
        try:
            before = store_files(models)
            st, body = s.json("POST", "/api/create", {"model": "big", "from": os.path.join(
                FIXTURES, "llama-F16.gguf"), "stream": False})
            c.check(st == 507 and "space" in str(body), f"create on a full disk: {st} {body}")
            c.check(store_files(models) == before,
                    f"a failed create left files: {store_files(models) - before}")
            st, r = s.json("POST", "/api/generate", {"model": "tiny", "prompt": "hi",
                                                     "stream": False, "options": {"num_predict": 2}})
            c.check(st == 200, f"the existing model after a full disk: {st} {r}")
            digest = "sha256:" + hashlib.sha256(b"z").hexdigest()
            first = upload_head(s.port, digest, "Transfer-Encoding: chunked")
            c.check(first.startswith("HTTP/1.1 507"), f"chunked upload on a full disk: {first[:60]!r}")
            c.check(store_files(models) == before, "an upload on a full disk left files")
        finally:
            s.stop()
    finally:
        subprocess.run(["umount", mnt], capture_output=True)


def check_cleanup(c, tmp):
    models = tempfile.mkdtemp(prefix="hearth-gc-", dir=tmp)
    put_model(models, "tiny:latest", MODEL)
    blobs = os.path.join(models, "blobs")
    old = time.time() - 7200
    leftovers = {}
    for name, content in ((".tmp-upload-abc123", b"x" * 5000), (".quantize-77-abcdef", b"y" * 100),
                          ("sha256-" + hashlib.sha256(b"orphan").hexdigest(), b"orphan")):
        p = os.path.join(blobs, name)
        with open(p, "wb") as f:
            f.write(content)
        os.utime(p, (old, old))
        leftovers[name] = p
    fresh = os.path.join(blobs, "sha256-" + hashlib.sha256(b"fresh").hexdigest())
    with open(fresh, "wb") as f:
        f.write(b"fresh")
    mdir = os.path.join(models, "manifests", "registry.ollama.ai", "library", "tiny")
    mtmp = os.path.join(mdir, ".tmp-XYZ")
    with open(mtmp, "w") as f:
        f.write("{")
    os.utime(mtmp, (old, old))
    s = Server(models=models)
    try:
        c.check(not any(os.path.exists(p) for p in leftovers.values()) and not os.path.exists(mtmp),
                f"left after start: {[n for n, p in leftovers.items() if os.path.exists(p)]}")
        c.check(os.path.exists(fresh), "a fresh unreferenced blob (an upload awaiting its create) "
                "was collected")
        st, r = s.json("POST", "/api/generate", {"model": "tiny", "prompt": "hi", "stream": False,
                                                 "options": {"num_predict": 2}})
        c.check(st == 200, f"model intact after cleanup: {st} {r}")
        check_disk_room(c, s)
    finally:
        s.stop()
    # `hearth prune` (no age limit) removes the fresh orphan too, nothing referenced.
    models2 = tempfile.mkdtemp(prefix="hearth-gc2-", dir=tmp)
    put_model(models2, "tiny:latest", MODEL)
    orphan = os.path.join(models2, "blobs", "sha256-" + hashlib.sha256(b"o2").hexdigest())
    with open(orphan, "wb") as f:
        f.write(b"o2")
    env = dict(os.environ, HEARTH_MODELS=models2)
    out = subprocess.run([HEARTH, "prune", "--dry-run"], env=env, capture_output=True, text=True)
    c.check(out.returncode == 0 and "1 unused blobs" in out.stdout and os.path.exists(orphan),
            f"prune --dry-run: {out.stdout} {out.stderr}")
    out = subprocess.run([HEARTH, "prune"], env=env, capture_output=True, text=True)
    c.check(out.returncode == 0 and not os.path.exists(orphan), f"prune: {out.stdout} {out.stderr}")
    s2 = Server(models=models2)
    try:
        st, r = s2.json("POST", "/api/show", {"model": "tiny"})
        c.check(st == 200, f"model intact after prune: {st}")
    finally:
        s2.stop()


def main():
    c = Checker("server_hardening")
    tmp = tempfile.mkdtemp(prefix="hearth-hard-")
    s = Server(env={"HEARTH_ORIGINS": "https://ui.example.org", "HEARTH_READ_TIMEOUT": "2",
                    "HEARTH_MAX_UPLOAD": "300M"})
    try:
        put_model(s.models, "tiny:latest", MODEL)
        check_browser_rules(c, s)
        check_create_from_path(c, s, tmp)
        check_http_errors(c, s)
        check_options(c, s)
        check_cli_modelfile(c, s, tmp)
        check_responsive_during_upload(c, s)
    finally:
        s.stop()
    s = Server(env={"HEARTH_READ_TIMEOUT": "2", "HEARTH_MAX_UPLOAD": "8M"})
    try:
        check_uploads(c, s)
    finally:
        s.stop()
    check_cleanup(c, tmp)
    check_disk_full(c, tmp)
    check_fd_exhaustion(c)
    c.finish()


if __name__ == "__main__":
    main()
