"""Soak test for `hearth serve` (not part of the default test run: it takes minutes).

For DURATION seconds (default 600): 8 clients stream chats (a third of them hang up mid-stream),
one uploads blobs (half with a wrong digest), one creates, copies and deletes models, and every
KILL_EVERY seconds (default 60) the server is killed with SIGKILL and restarted on the same store.
At the end it checks, and prints as a table:
  - every model whose create/copy was acknowledged and not deleted is listed, shows, and every
    blob of every manifest exists and hashes to its name (zero lost or corrupted models);
  - no temporary files remain after the last restart, and the only unreferenced blobs are the
    uploads that were never used (which `hearth prune` then removes);
  - the server's RSS per life (sampled each 5 s) stays flat.
usage: /usr/bin/python3 tests/soak/soak.py [--duration S] [--kill-every S] [--hearth PATH]
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "differential"))
from serve_util import free_port  # noqa: E402
FIXTURES = os.path.join(ROOT, "..", "shared", "fixtures")
MODEL = os.path.join(FIXTURES, "qwen3-F16.gguf")


class Soak:
    def __init__(self, hearth, duration, kill_every):
        self.hearth = hearth
        self.duration = duration
        self.kill_every = kill_every
        self.models = tempfile.mkdtemp(prefix="hearth-soak-")
        self.port = free_port()
        self.proc = None
        self.lock = threading.Lock()
        self.expected = {}  # model name -> True while it must exist
        self.orphans = set()  # digests uploaded and never used
        self.stats = dict(streams=0, stream_tokens=0, hangups=0, uploads_ok=0, uploads_bad=0,
                          creates=0, copies=0, deletes=0, kills=0, errors_5xx=0, conn_errors=0)
        self.rss = []  # (life, seconds into life, kB)
        self.life = 0
        self.stop = threading.Event()

    # ---- server
    def start(self):
        env = dict(os.environ, HEARTH_MODELS=self.models, HEARTH_HOST=f"127.0.0.1:{self.port}",
                   HEARTH_NUM_PARALLEL="4")
        self.proc = subprocess.Popen([self.hearth, "serve"], env=env, stderr=subprocess.DEVNULL)
        self.life += 1
        self.born = time.monotonic()
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.stats["kills"] += 1

    def request(self, method, path, body=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=json.dumps(body) if isinstance(body, dict) else body)
            r = c.getresponse()
            data = r.read()
            if r.status >= 500:
                with self.lock:
                    self.stats["errors_5xx"] += 1
            return r.status, data
        finally:
            c.close()

    # ---- clients
    def streamer(self, i):
        rng = random.Random(i)
        while not self.stop.is_set():
            hang = rng.random() < 0.33
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                c.request("POST", "/api/chat", body=json.dumps({
                    "model": "base", "messages": [{"role": "user", "content": f"tell {i} {rng.random()}"}],
                    "options": {"num_predict": rng.randint(10, 120), "temperature": 0.8}}))
                r = c.getresponse()
                n = 0
                for line in r:
                    n += 1
                    if hang and n >= 5:
                        break
                c.close()
                with self.lock:
                    self.stats["streams"] += 1
                    self.stats["stream_tokens"] += n
                    self.stats["hangups"] += hang
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.stats["conn_errors"] += 1
                time.sleep(0.2)

    def uploader(self):
        rng = random.Random(99)
        while not self.stop.is_set():
            data = os.urandom(rng.randint(1, 8) << 20)
            good = rng.random() < 0.5
            digest = "sha256:" + hashlib.sha256(data if good else b"x" + data).hexdigest()
            try:
                st, _ = self.request("POST", "/api/blobs/" + digest, data)
                with self.lock:
                    if st == 201 and good:
                        self.stats["uploads_ok"] += 1
                        self.orphans.add(digest)
                    elif st == 400 and not good:
                        self.stats["uploads_bad"] += 1
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.stats["conn_errors"] += 1
                time.sleep(0.2)
            time.sleep(0.5)

    def manager(self):
        rng = random.Random(7)
        n = 0
        while not self.stop.is_set():
            n += 1
            op = rng.random()
            try:
                with self.lock:
                    live = [m for m, ok in self.expected.items() if ok and m != "base"]
                if op < 0.5 or not live:
                    name = f"m{n}"
                    st, _ = self.request("POST", "/api/create", {
                        "model": name, "from": "base", "system": f"You are helper {n}.",
                        "parameters": {"temperature": rng.random()}, "stream": False})
                    if st == 200:
                        with self.lock:
                            self.expected[name] = True
                            self.stats["creates"] += 1
                elif op < 0.7:
                    src = rng.choice(live)
                    st, _ = self.request("POST", "/api/copy", {"source": src, "destination": f"c{n}"})
                    if st == 200:
                        with self.lock:
                            self.expected[f"c{n}"] = True
                            self.stats["copies"] += 1
                else:
                    victim = rng.choice(live)
                    # Unknown outcome while the request is in flight: a kill may land before
                    # or after the manifest is removed. Mark it "may or may not exist".
                    with self.lock:
                        self.expected[victim] = None
                    st, _ = self.request("DELETE", "/api/delete", {"model": victim})
                    with self.lock:
                        if st == 200:
                            self.expected[victim] = False
                            self.stats["deletes"] += 1
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.stats["conn_errors"] += 1
                time.sleep(0.2)
            time.sleep(0.3)

    def sample_rss(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.rss.append((self.life, time.monotonic() - self.born, int(line.split()[1])))
        except OSError:
            pass

    # ---- checks
    def verify(self):
        problems = []
        blobs_dir = os.path.join(self.models, "blobs")
        st, data = self.request("GET", "/api/tags")
        names = {m["name"].split(":")[0] for m in json.loads(data)["models"]}
        for name, ok in self.expected.items():
            if ok is True and name not in names:
                problems.append(f"lost model {name}")
            if ok is False and name in names:
                problems.append(f"deleted model {name} came back")
        referenced = set()
        for d, _, files in os.walk(os.path.join(self.models, "manifests")):
            for f in files:
                if f.startswith(".tmp-"):
                    problems.append(f"leftover temporary {os.path.join(d, f)}")
                    continue
                m = json.load(open(os.path.join(d, f)))
                for layer in [m["config"]] + m["layers"]:
                    referenced.add(layer["digest"])
        for dg in referenced:
            p = os.path.join(blobs_dir, dg.replace(":", "-"))
            if not os.path.exists(p):
                problems.append(f"missing blob {dg}")
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            if "sha256:" + h.hexdigest() != dg:
                problems.append(f"corrupt blob {dg}")
        temps = [f for f in os.listdir(blobs_dir) if f.startswith(".")]
        if temps:
            problems.append(f"leftover temporaries in blobs/: {temps[:5]} ({len(temps)})")
        unref = {"sha256:" + f[7:] for f in os.listdir(blobs_dir) if f.startswith("sha256-")} - referenced
        stray = unref - self.orphans
        # A create killed after writing its layers but before its manifest leaves small layers
        # that the hourly collection removes; they are counted, not failures.
        for name in sorted(names):
            st, _ = self.request("POST", "/api/show", {"model": name})
            if st != 200:
                problems.append(f"show {name}: {st}")
        return problems, len(referenced), len(unref), len(stray)

    def run(self):
        self.start()
        st, _ = self.request("POST", "/api/create", {"model": "base", "from": MODEL, "stream": False})
        assert st == 200, st
        self.expected["base"] = True
        threads = [threading.Thread(target=self.streamer, args=(i,)) for i in range(8)]
        threads += [threading.Thread(target=self.uploader), threading.Thread(target=self.manager)]
        for t in threads:
            t.start()
        t_end = time.monotonic() + self.duration
        next_kill = time.monotonic() + self.kill_every
        while time.monotonic() < t_end:
            time.sleep(5)
            self.sample_rss()
            if time.monotonic() >= next_kill and time.monotonic() + 10 < t_end:
                self.kill()
                self.start()
                next_kill = time.monotonic() + self.kill_every
        self.stop.set()
        for t in threads:
            t.join()
        # One last kill and restart: what the dead server left must be cleaned at start.
        self.kill()
        self.start()
        time.sleep(1)
        problems, n_ref, n_unref, n_stray = self.verify()
        self.proc.terminate()
        self.proc.wait()
        out = subprocess.run([self.hearth, "prune"], env=dict(os.environ, HEARTH_MODELS=self.models),
                             capture_output=True, text=True)
        left = [f for f in os.listdir(os.path.join(self.models, "blobs"))]
        return problems, n_ref, n_unref, n_stray, out.stdout.strip(), len(left)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=600)
    ap.add_argument("--kill-every", type=int, default=60)
    ap.add_argument("--hearth", default=os.path.join(ROOT, "build", "hearth"))
    a = ap.parse_args()
    s = Soak(a.hearth, a.duration, a.kill_every)
    t0 = time.monotonic()
    try:
        problems, n_ref, n_unref, n_stray, prune_out, n_left = s.run()
    finally:
        if s.proc and s.proc.poll() is None:
            s.proc.kill()
    print(f"soak: {time.monotonic() - t0:.0f} s, {s.life} server lives")
    for k, v in s.stats.items():
        print(f"  {k:14s} {v}")
    by_life = {}
    for life, _, kb in s.rss:
        by_life.setdefault(life, []).append(kb)
    print("  RSS per life (MB, min..max):",
          " ".join(f"{min(v) / 1024:.0f}..{max(v) / 1024:.0f}" for _, v in sorted(by_life.items())))
    print(f"  blobs referenced {n_ref}, unreferenced {n_unref} (of which not uploads: {n_stray})")
    print(f"  hearth prune: {prune_out}; files left in blobs/: {n_left}")
    if n_left != n_ref:
        problems.append(f"after prune {n_left} files in blobs/, {n_ref} referenced")
    lives = [max(v) for _, v in sorted(by_life.items()) if len(v) >= 3]
    if len(lives) >= 2 and lives[-1] > 1.5 * lives[0]:
        problems.append(f"RSS grew from {lives[0]} kB to {lives[-1]} kB")
    shutil.rmtree(s.models, ignore_errors=True)
    for p in problems:
        print("FAIL:", p)
    print("soak:", "PASS" if not problems else f"{len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
