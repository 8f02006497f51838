"""A disk that fills up while `hearth serve` writes to it (issue #16, disk safety): the store lives
on a small tmpfs mounted for the test, and the disk is filled *during* the writes, after every
free-space check has passed, so the write itself hits ENOSPC.

Pull: the fake registry calls back after the first 512 KiB of a 16 MiB blob (a "call" fault);
the callback waits until the server has written those bytes to its partial file, then fills the
tmpfs. Checked: the pull ends in an error line naming the full disk (and a later non-streamed
pull in a 507), nothing of it in blobs/ or manifests/, the partial file only under downloads/,
the store valid, the model installed before still answering, the server still serving; once
the filler is gone the same pull resumes past what the partial held and the blob's sha256 is
right.

Blob upload (POST /api/blobs/<digest>): a Content-Length beyond the free space is refused with
507 before the body; a chunked body that outgrows the free space ends in 507; an upload whose
disk fills half-way (filled by the test between two halves of the body) ends in 507 naming the
full disk with no temporary file left in blobs/. /api/create from an uploaded blob on a full
disk fails with a clear error and no manifest, and succeeds once there is room.

Needs root (mount -t tmpfs): without it the test fails, it does not skip."""
import hashlib
import json
import os
import random
import socket
import subprocess
import tempfile
import time

from fake_registry import MODEL_MEDIA, FakeRegistry, digest_of
from harness import SHARED, Checker
from serve_util import Server, held_bytes, held_ranges, inside, put_model
from test_server_pull import ENV, TEMPLATE_MEDIA, sha_file, store_problems

MiB = 1 << 20
TMPFS_MB = 300  # the server keeps 256 MiB free for uploads (api.cpp disk_room): room ~40 MiB
OLD = os.path.join(SHARED, "fixtures", "qwen2-Q4_K_M.gguf")
NEW = os.path.join(SHARED, "fixtures", "qwen3-Q4_K_M.gguf")


def space_error(msg):
    m = (msg or "").lower()
    return "no space left on device" in m or "not enough disk space" in m


class Disk:
    """The tmpfs, and filler files that take every free byte of it."""

    def __init__(self, size_mb):
        self.mnt = tempfile.mkdtemp(prefix="hearth-diskfull-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            raise SystemExit("FAIL: cannot mount a tmpfs for the disk-full test (needs root): " +
                             r.stderr.strip())
        self.fillers = []

    def free(self):
        v = os.statvfs(self.mnt)
        return v.f_bavail * v.f_frsize

    def fill(self):
        path = os.path.join(self.mnt, f"filler-{len(self.fillers)}")
        self.fillers.append(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (MiB, 4096, 1):
                block = b"\xa5" * size
                while True:
                    try:
                        if os.write(fd, block) == 0:
                            break
                    except OSError as e:
                        if e.errno != 28:  # ENOSPC
                            raise
                        break
        finally:
            os.close(fd)
        return self.free()

    def unfill(self):
        for p in self.fillers:
            os.unlink(p)
        self.fillers = []

    def close(self):
        r = subprocess.run(["umount", self.mnt], capture_output=True, text=True)
        if r.returncode == 0:
            os.rmdir(self.mnt)
        else:
            print("warning: umount", self.mnt, r.stderr.strip())


def raw_request(port, head, parts=(), between=None, timeout=60):
    """Sends request `head` (bytes, ending in a blank line), then `parts` of the body one by one
    (`between(i)` before part i > 0); reads the answer even when the server answered and closed
    early. Returns (status, json body or text)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head)
        for i, p in enumerate(parts):
            if i and between:
                between(i)
            try:
                s.sendall(p)
            except (BrokenPipeError, ConnectionResetError):
                break
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                hd, _, body = data.partition(b"\r\n\r\n")
                n = [l for l in hd.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if n and len(body) >= int(n[0].split(b":")[1]):
                    break
    except OSError:
        pass
    s.close()
    if not data.startswith(b"HTTP/1.1 "):
        return None, data[:200]
    hd, _, body = data.partition(b"\r\n\r\n")
    try:
        return int(hd.split()[1]), json.loads(body)
    except ValueError:
        return int(hd.split()[1]), body[:200]


def tmp_files(models):
    blobs = os.path.join(models, "blobs")
    return [n for n in os.listdir(blobs) if not (n.startswith("sha256-") and len(n) == 71)]


def main():
    c = Checker("server-diskfull")
    disk = Disk(TMPFS_MB)
    reg = srv = None
    try:
        models = os.path.join(disk.mnt, "store")
        put_model(models, "old:latest", OLD)
        before = sorted(os.listdir(os.path.join(models, "blobs")))
        srv = Server(models=models, env=ENV)
        reg = FakeRegistry()
        ask = {"prompt": "The capital of France is", "stream": False,
               "options": {"temperature": 0, "num_predict": 8, "seed": 1}}
        st, r0 = srv.json("POST", "/api/generate", dict(ask, model="old"))
        c.check(st == 200 and r0.get("done"), f"old model before: {st} {r0}")

        def still_serving(what):
            st, r = srv.json("POST", "/api/generate", dict(ask, model="old"))
            c.check(st == 200 and r.get("response") == r0.get("response"),
                    f"{what}: the model installed before no longer answers: {st} {r}")
            st, tags = srv.json("GET", "/api/tags")
            c.check(st == 200 and [m["name"] for m in tags["models"]] == ["old:latest"],
                    f"{what}: models listed: {tags}")
            c.check(store_problems(models) == [], f"{what}: store: {store_problems(models)}")
            c.check(tmp_files(models) == [], f"{what}: temporary files in blobs/: {tmp_files(models)}")

        # --- Pull: the disk fills after the first 512 KiB of the model blob are on disk.
        data = random.Random(5).randbytes(16 * MiB)
        d = digest_of(data)
        reg.add_model("library", "big", "latest", [(MODEL_MEDIA, data), (TEMPLATE_MEDIA, b"{{ .Prompt }}")])
        name = f"127.0.0.1:{reg.port}/library/big:latest"
        partial = os.path.join(models, "downloads", f"sha256-{d[7:]}.partial")
        left = []

        def fill_when_written():
            for _ in range(500):  # until the server has those bytes on disk (at most 5 s)
                if os.path.exists(partial) and os.stat(partial).st_blocks * 512 >= 512 * 1024:
                    break
                time.sleep(0.01)
            left.append(disk.fill())

        f = reg.fault(d, "call", after=512 * 1024, range_start=0, fn=fill_when_written)
        free0 = disk.free()
        st, _, lines = srv.ndjson("/api/pull", {"model": name, "insecure": True}, timeout=120)
        c.check(f.fired == 1 and left == [0], f"disk not filled mid-pull: fired {f.fired}, free {left}")
        c.check(free0 > 2 * len(data), f"free space before the pull: {free0}")
        err = lines[-1].get("error", "") if st == 200 and lines else ""
        c.check(space_error(err), f"pull on a full disk: {st} {lines[-2:] if st == 200 else lines}")
        print("pull on a full disk:", err)
        c.check(not any("success" == l.get("status") for l in lines), "a failed pull said success")
        c.check(not os.path.exists(os.path.join(models, "blobs", "sha256-" + d[7:])),
                "the blob of the failed pull is in the store")
        after = sorted(os.listdir(os.path.join(models, "blobs")))
        c.check(after == before, f"blobs of the failed pull left in blobs/: {sorted(set(after) - set(before))}")
        c.check(not os.path.exists(os.path.join(models, "manifests", f"127.0.0.1:{reg.port}")),
                "a manifest was written for the failed pull")
        have = held_ranges(partial)
        # Parts ahead of byte 0 write at their own offsets, so how much is on disk when the
        # filler strikes varies; something must be, and it must be logged.
        c.check(held_bytes(have) > 0, f"partial file holds {have} (kept under downloads/ to resume)")
        print("held after the failed pull:", have)
        c.check(sorted(os.listdir(os.path.join(models, "downloads"))) ==
                sorted([os.path.basename(partial), os.path.basename(partial) + ".ranges"]),
                f"downloads/: {os.listdir(os.path.join(models, 'downloads'))}")
        c.check("No space left on device" in srv.read_log(), "the full disk is not in the log")
        still_serving("after the failed pull")

        # Still full: refused before the first byte; not streamed: 507.
        reg.clear_log()
        st, body = srv.json("POST", "/api/pull", {"model": name, "insecure": True, "stream": False})
        c.check(st == 507 and space_error(body.get("error") if isinstance(body, dict) else ""),
                f"non-streamed pull on a full disk: {st} {body}")
        c.check(reg.bytes_served(d) == 0, "blob bytes fetched for a pull that cannot fit")

        # Room again: the same pull resumes, fetching only what the partial file does not hold.
        disk.unfill()
        reg.clear_log()
        st, _, lines = srv.ndjson("/api/pull", {"model": name, "insecure": True}, timeout=120)
        c.check(st == 200 and lines and lines[-1] == {"status": "success"},
                f"pull after freeing space: {lines[-2:] if st == 200 else lines}")
        blob = os.path.join(models, "blobs", "sha256-" + d[7:])
        c.check(os.path.exists(blob) and sha_file(blob) == d[7:], "resumed blob's sha256 is wrong")
        starts = [e["span"][0] for e in reg.entries(digest=d) if e.get("span")]
        c.check(starts and not any(inside(have, x) for x in starts) and
                reg.bytes_served(d) <= len(data) - held_bytes(have),
                f"resume: fetched from {sorted(starts)[:4]}, {reg.bytes_served(d)} "
                f"bytes, partial held {have}")
        c.check(not os.path.exists(partial + ".ranges"), "ranges log left after success")
        c.check(not os.path.exists(partial), "partial file left after success")
        st, r = srv.json("POST", "/api/generate", dict(ask, model="old"))
        c.check(st == 200 and r.get("response") == r0.get("response"), f"old model: {st} {r}")
        c.check(store_problems(models) == [], f"store: {store_problems(models)}")
        st, _ = srv.json("DELETE", "/api/delete", {"model": name})
        c.check(st == 200 and sorted(os.listdir(os.path.join(models, "blobs"))) == before,
                f"delete of the pulled model: {st}")
        c.check(reg.errors == [], f"registry handler errors: {reg.errors[:1]}")

        # --- Blob uploads.
        room = disk.free() - 256 * MiB
        c.check(room > 16 * MiB, f"room for uploads on the tmpfs: {room}")
        piece = random.Random(9).randbytes(MiB)

        def head(digest, length=None):
            h = f"POST /api/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            h += f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
            return (h + "\r\n").encode()

        # A declared length beyond the free space: 507 before any byte.
        n = disk.free() + MiB
        st, body = raw_request(srv.port, head("sha256:" + "cd" * 32, n))
        c.check(st == 507 and space_error(body.get("error")), f"upload larger than the disk: {st} {body}")
        c.check(tmp_files(models) == [], f"temporary files in blobs/: {tmp_files(models)}")

        # Chunked (no length): stopped when it outgrows the room.
        k = room // MiB + 8
        body_d = "sha256:" + hashlib.sha256(piece * k).hexdigest()
        chunk = f"{MiB:x}\r\n".encode() + piece + b"\r\n"
        st, body = raw_request(srv.port, head(body_d), [chunk] * k + [b"0\r\n\r\n"])
        c.check(st == 507 and space_error(body.get("error") if isinstance(body, dict) else ""),
                f"chunked upload larger than the room: {st} {body}")
        c.check(tmp_files(models) == [], f"temporary files in blobs/: {tmp_files(models)}")
        c.check(not os.path.exists(os.path.join(models, "blobs", "sha256-" + body_d[7:])),
                "an over-large upload entered the store")

        # The disk fills half-way through an upload that fit when it started.
        k = 16
        body_d = "sha256:" + hashlib.sha256(piece * k).hexdigest()
        seen = []

        def fill_midway(i):
            if i != k // 2:
                return
            for _ in range(500):
                t = [x for x in tmp_files(models)]
                if t and os.path.getsize(os.path.join(models, "blobs", t[0])) >= (k // 2) * MiB:
                    break
                time.sleep(0.01)
            seen.append(tmp_files(models))
            disk.fill()

        st, body = raw_request(srv.port, head(body_d, k * MiB), [piece] * k, between=fill_midway)
        err = body.get("error", "") if isinstance(body, dict) else ""
        c.check(seen and len(seen[0]) == 1, f"upload's temporary file while writing: {seen}")
        c.check(st == 507 and "no space left on device" in err.lower(),
                f"upload on a disk that filled up: {st} {body}")
        print("upload on a disk that filled up:", st, err)
        c.check(not os.path.exists(os.path.join(models, "blobs", "sha256-" + body_d[7:])),
                "a partial upload entered the store")
        still_serving("after the failed upload")

        # /api/create from an uploaded blob: the blob arrives while there is room, the create
        # runs on a full disk (its config blob and manifest cannot be written).
        disk.unfill()
        gguf = open(NEW, "rb").read()
        gd = digest_of(gguf)
        st, body = raw_request(srv.port, head(gd, len(gguf)), [gguf])
        c.check(st == 201, f"upload of a GGUF: {st} {body}")
        c.check(disk.fill() == 0, "disk not full")
        st, body = srv.json("POST", "/api/create", {"model": "fresh", "files": {"m.gguf": gd},
                                                    "stream": False})
        c.check(st == 507 and space_error(body.get("error") if isinstance(body, dict) else ""),
                f"create on a full disk: {st} {body}")
        print("create on a full disk:", st, body)
        c.check(not os.path.exists(os.path.join(models, "manifests", "registry.ollama.ai",
                                                "library", "fresh")),
                "a manifest was written by a failed create")
        still_serving("after the failed create")
        disk.unfill()
        st, body = srv.json("POST", "/api/create", {"model": "fresh", "files": {"m.gguf": gd},
                                                    "stream": False})
        c.check(st == 200, f"create after freeing space: {st} {body}")
        st, r = srv.json("POST", "/api/generate", dict(ask, model="fresh"))
        c.check(st == 200 and r.get("done"), f"created model: {st} {r}")
        c.check(srv.alive(), "server not serving at the end")
        c.check(store_problems(models) == [], f"store: {store_problems(models)}")
    finally:
        if reg:
            reg.stop()
        if srv:
            srv.stop()
        disk.close()

    print(f"{c.checks} checks, {len(c.failures)} failures")
    raise SystemExit(1 if c.failures else 0)


if __name__ == "__main__":
    main()
