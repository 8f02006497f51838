"""Pulling models (issue #16): `hearth serve` pulls from an Ollama-protocol registry — the
fault-injecting one in fake_registry.py, and another `hearth serve` answering the registry API for
its own store — through /api/pull and the CLI.

Checked: progress lines shaped as Ollama's; blobs and manifest byte-identical to the registry's;
each byte fetched once when nothing fails; a dropped connection, a stalled part, 5xx answers and a
blob corrupted in transit all end in a verified blob (a second corruption in an error, with
nothing in the store); a 401 challenge answered with a token, never sent to the storage host; a
404 manifest; a pull that cannot fit on the disk refused before any byte; the server killed
mid-pull 20 times, each rerun resuming from what was on disk (no range below it fetched again)
with the store valid after every kill; two hearth instances, one pulling from the other by API
and CLI, giving the same answers; `hearth run` pulling a missing model."""
import hashlib
import http.client
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time

from fake_registry import MODEL_MEDIA, FakeRegistry, digest_of
from harness import HEARTH, SHARED, Checker
from serve_util import Server, held_bytes, held_ranges, inside, put_model

MiB = 1 << 20
ENV = {
    "HEARTH_PULL_PART_MB": "1",  # many parts from small blobs
    "HEARTH_PULL_BACKOFF_MS": "50",
    "HEARTH_PULL_STALL_SECONDS": "2",
    "HEARTH_PULL_STREAMS": "4",
}
TEMPLATE_MEDIA = "application/vnd.ollama.image.template"


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def store_problems(models):
    """Every blob's content matches its name; every manifest's blobs are present."""
    bad = []
    blobs = os.path.join(models, "blobs")
    names = set(os.listdir(blobs)) if os.path.isdir(blobs) else set()
    for n in names:
        if n.startswith("sha256-") and len(n) == 7 + 64:
            if sha_file(os.path.join(blobs, n)) != n[7:]:
                bad.append("blob " + n + " does not match its name")
    for root, _, files in os.walk(os.path.join(models, "manifests")):
        for f in files:
            m = json.load(open(os.path.join(root, f)))
            for l in m["layers"] + [m["config"]]:
                if "sha256-" + l["digest"][7:] not in names:
                    bad.append(f"manifest {root}/{f} names missing blob {l['digest']}")
    return bad


def model(reg, tag, size, seed):
    rnd = random.Random(seed)
    data = rnd.randbytes(size)
    tmpl = b"{{ .Prompt }}"
    man = reg.add_model("library", "m", tag, [(MODEL_MEDIA, data), (TEMPLATE_MEDIA, tmpl)])
    return data, digest_of(data), man


def main():
    c = Checker("server-pull")
    reg = FakeRegistry()
    srv = Server(env=ENV)
    base = f"127.0.0.1:{reg.port}/library/m"

    def pull(tag, stream=True, name=None):
        return srv.ndjson("/api/pull", {"model": name or f"{base}:{tag}", "insecure": True,
                                        "stream": stream}, timeout=120)

    def blob_ok(data, digest):
        p = os.path.join(srv.models, "blobs", "sha256-" + digest[7:])
        return os.path.exists(p) and open(p, "rb").read() == bytes(data)

    try:
        # A plain pull: Ollama's progress shape, bytes identical, each byte fetched once.
        data, d, man = model(reg, "plain", 6 * MiB + 123, 1)
        st, _, lines = pull("plain")
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"plain pull: {st} {lines[-3:]}")
        statuses = [l.get("status") for l in lines]
        c.check(statuses[0] == "pulling manifest", f"first status {statuses[:2]}")
        blob_lines = [l for l in lines if l.get("digest") == d]
        c.check(blob_lines and all(l["status"] == "pulling " + d[7:19] and l["total"] == len(data)
                                   for l in blob_lines), f"blob progress lines {blob_lines[:2]}")
        c.check(blob_lines and blob_lines[-1].get("completed") == len(data),
                f"last progress of the blob: {blob_lines[-1:]}")
        c.check(all("completed" not in l or l["completed"] > 0 for l in lines),
                "completed omitted while 0, as Ollama")
        for s in ("verifying sha256 digest", "writing manifest"):
            c.check(s in statuses, f"status '{s}' missing: {statuses}")
        c.check(blob_ok(data, d), "pulled blob differs from the registry's")
        mpath = os.path.join(srv.models, "manifests", f"127.0.0.1:{reg.port}", "library", "m",
                             "plain")
        c.check(os.path.exists(mpath) and open(mpath, "rb").read() == man,
                "manifest not stored byte for byte")
        c.check(reg.bytes_served(d) == len(data),
                f"served {reg.bytes_served(d)} bytes of a {len(data)}-byte blob")
        direct = reg.entries(method="GET", digest=d, status=206)
        c.check(direct and all(e["path"].startswith("/direct/") for e in direct),
                "ranged GETs did not follow the registry's redirect")
        c.check(len(direct) >= 6, f"{len(direct)} ranged parts for a 6 MiB blob at 1 MiB parts")
        st, tags = srv.json("GET", "/api/tags")
        c.check(any(m["name"] == f"{base}:plain" for m in tags["models"]),
                f"pulled model missing from /api/tags: {[m['name'] for m in tags['models']]}")

        # Pulling again: everything present, nothing fetched.
        reg.clear_log()
        st, _, lines = pull("plain")
        c.check(st == 200 and lines[-1] == {"status": "success"}, "second pull")
        c.check(reg.bytes_served(d) == 0, "a present blob was fetched again")

        # Faults, each on a fresh blob.
        cases = [
            ("drop", dict(kind="drop", times=3, after=300_000)),
            ("stall", dict(kind="stall", times=1, after=1000, seconds=60)),
            ("status", dict(kind="status", times=3, code=503)),
            ("corrupt", dict(kind="corrupt", times=1, at=4 * MiB + 7)),
        ]
        for i, (tag, fault) in enumerate(cases):
            data, d, _ = model(reg, tag, 5 * MiB + 11, 10 + i)
            f = reg.fault(d, **fault)
            t0 = time.time()
            st, _, lines = pull(tag)
            took = time.time() - t0
            c.check(st == 200 and lines[-1] == {"status": "success"},
                    f"{tag}: pull did not succeed: {lines[-2:]}")
            c.check(f.fired == fault["times"], f"{tag}: fault fired {f.fired} times")
            c.check(blob_ok(data, d), f"{tag}: blob in the store differs")
            c.check(took < 30, f"{tag}: took {took:.1f} s")
        c.check("digest mismatch" in srv.read_log(), "corruption not reported in the log")

        # Corrupted twice: an error, and nothing of it in the store.
        data, d, _ = model(reg, "corrupt2", 3 * MiB, 20)
        reg.fault(d, "corrupt", times=2, at=100)
        st, _, lines = pull("corrupt2")
        c.check(st == 200 and "digest mismatch" in lines[-1].get("error", ""),
                f"twice corrupted: {lines[-1:]}")
        c.check(not os.path.exists(os.path.join(srv.models, "blobs", "sha256-" + d[7:])),
                "a corrupt blob entered the store")
        c.check(not os.path.exists(os.path.join(srv.models, "manifests", f"127.0.0.1:{reg.port}",
                                                "library", "m", "corrupt2")),
                "a manifest was written for a failed pull")

        # Unknown model: 404 (not streaming), an error line (streaming).
        st, body = srv.json("POST", "/api/pull", {"model": f"{base}:nope", "insecure": True,
                                                  "stream": False})
        c.check(st == 404 and "not found" in body.get("error", ""), f"404 manifest: {st} {body}")
        st, _, lines = pull("nope")
        c.check(st == 200 and "not found" in lines[-1].get("error", ""), f"streamed 404: {lines}")
        # Plain HTTP only when asked.
        st, body = srv.json("POST", "/api/pull", {"model": f"http://{base}:plain", "stream": False})
        c.check(st == 400 and "insecure" in body.get("error", ""), f"http without insecure: {body}")

        # A 401 challenge answered with a token; the storage host never sees it.
        data, d, _ = model(reg, "auth", 2 * MiB, 30)
        reg.require_token = "s3cret"
        reg.clear_log()
        st, _, lines = pull("auth")
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"token pull: {lines[-2:]}")
        c.check(len(reg.token_requests) >= 1 and "scope=" in reg.token_requests[0]["query"],
                f"token requests: {reg.token_requests}")
        v2 = [e for e in reg.log if e["path"].startswith("/v2/") and e["status"] == 200]
        c.check(v2 and all(e["auth"] == "Bearer s3cret" for e in v2), "registry requests lack the token")
        c.check(all(e["auth"] is None for e in reg.log if e["path"].startswith("/direct/")),
                "the token was sent to the storage host")
        reg.require_token = None

        # Tags matched as the registry matches them (Hugging Face: quant tags, any case).
        reg.case_insensitive_tags = True
        data, d, _ = model(reg, "Q4_K_M", MiB, 40)
        st, _, lines = pull("q4_k_m")
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"case-insensitive tag: {lines[-1:]}")

        # Does not fit: refused before the first byte.
        huge = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": digest_of(b"{}"), "size": 2},
                "layers": [{"mediaType": MODEL_MEDIA, "digest": "sha256:" + "ab" * 32,
                            "size": 1 << 50}]}
        reg.add_blob(b"{}")
        reg.add_manifest("library", "m", "huge", json.dumps(huge).encode())
        reg.clear_log()
        st, _, lines = pull("huge")
        c.check(st == 200 and "not enough disk space" in lines[-1].get("error", ""),
                f"huge: {lines[-1:]}")
        c.check(not reg.entries(digest="sha256:" + "ab" * 32), "bytes requested for a pull that cannot fit")
        c.check(store_problems(srv.models) == [], f"store: {store_problems(srv.models)}")

        # Killed mid-pull 20 times: after every kill the store is valid; every rerun asks only
        # for bytes the partial file did not hold (its ranges log).
        data, d, _ = model(reg, "kill", 12 * MiB, 50)
        reg.rate = 3 * MiB  # per request: 4 streams, ~1 s for the blob
        models = srv.models
        srv.proc.kill()
        srv.proc.wait()
        partial = os.path.join(models, "downloads", f"sha256-{d[7:]}.partial")
        rnd = random.Random(7)
        regressions, resumed = [], []
        for k in range(20):
            have = held_ranges(partial)
            reg.clear_log()
            s = Server(models=models, env=ENV)
            def run_pull(server=s):
                try:
                    server.ndjson("/api/pull", {"model": f"{base}:kill", "insecure": True},
                                  timeout=60)
                except Exception:  # the server is killed under it
                    pass

            th = threading.Thread(target=run_pull, daemon=True)
            th.start()
            time.sleep(rnd.uniform(0.05, 0.35))
            s.proc.kill()
            s.proc.wait()
            th.join(timeout=5)
            starts = [e["span"][0] for e in reg.entries(digest=d) if e.get("span")]
            if any(inside(have, x) for x in starts):
                regressions.append((k, have, sorted(starts)[:3]))
            resumed.append(held_bytes(have))
            probs = store_problems(models)
            c.check(probs == [], f"kill {k}: store broken: {probs}")
        c.check(regressions == [], f"ranges held on disk fetched again: {regressions}")
        c.check(max(resumed) > 0, f"no kill left anything to resume from: {resumed}")
        reg.rate = None
        srv = Server(models=models, env=ENV)
        st, _, lines = pull("kill")
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"final resume: {lines[-2:]}")
        c.check(blob_ok(data, d), "resumed blob differs")
        c.check(not os.path.exists(partial), "partial file left after success")
        c.check(reg.errors == [], f"registry handler errors: {reg.errors[:1]}")
    finally:
        reg.stop()
        srv.stop()

    # Two hearth instances: B pulls from A's store through A's registry endpoints, then pushes a
    # model of its own to A (uploads enabled on A).
    a = Server(env={"HEARTH_REGISTRY_UPLOADS": "1"})
    b = Server(env=ENV)
    try:
        fixture = os.path.join(SHARED, "fixtures", "qwen3-Q8_0.gguf")
        st, body = a.json("POST", "/api/create", {"model": "q3", "from": fixture, "stream": False,
                                                  "parameters": {"num_predict": 16}})
        c.check(st == 200, f"create on A: {st} {body}")
        st, hd = a.json("GET", "/v2/library/q3/manifests/latest")
        c.check(st == 200 and "layers" in hd, f"A's manifest endpoint: {st}")
        name = f"127.0.0.1:{a.port}/library/q3:latest"
        st, _, lines = b.ndjson("/api/pull", {"model": name, "insecure": True}, timeout=300)
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"B pulls from A: {lines[-2:]}")
        for l in hd["layers"] + [hd["config"]]:
            pa = os.path.join(a.models, "blobs", "sha256-" + l["digest"][7:])
            pb = os.path.join(b.models, "blobs", "sha256-" + l["digest"][7:])
            c.check(os.path.exists(pb) and sha_file(pa) == sha_file(pb), f"blob {l['digest']} differs")
        ask = {"prompt": "The capital of France is", "stream": False,
               "options": {"temperature": 0, "num_predict": 12, "seed": 1}}
        ra = a.json("POST", "/api/generate", dict(ask, model="q3"))[1]
        rb = b.json("POST", "/api/generate", dict(ask, model=name))[1]
        c.check(ra.get("response") and ra.get("response") == rb.get("response"),
                f"A and B answer differently: {ra.get('response')!r} vs {rb.get('response')!r}")
        # Ranged reads and HEAD from A's registry endpoint.
        dg = hd["layers"][0]["digest"]
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
        conn.request("GET", f"/v2/library/q3/blobs/{dg}", headers={"Range": "bytes=0-3"})
        r = conn.getresponse()
        c.check(r.status == 206 and r.read() == b"GGUF" and
                r.getheader("Content-Range", "").startswith("bytes 0-3/"),
                f"ranged blob GET: {r.status} {r.getheader('Content-Range')}")
        conn.request("HEAD", f"/v2/library/q3/blobs/{dg}")
        r = conn.getresponse()
        r.read()
        c.check(r.status == 200 and int(r.getheader("Content-Length")) == os.path.getsize(fixture),
                f"blob HEAD: {r.status} {r.getheader('Content-Length')}")
        conn.request("GET", f"/v2/library/q3/blobs/{dg}", headers={"Range": "bytes=99999999999-"})
        r = conn.getresponse()
        r.read()
        c.check(r.status == 416, f"unsatisfiable range: {r.status}")
        conn.close()
        # The CLI: a copy's manifest is new, its blobs are already on B.
        st, _ = a.json("POST", "/api/copy", {"source": "q3", "destination": "q3:v2"})
        env = dict(os.environ, HEARTH_HOST=f"127.0.0.1:{b.port}")
        r = subprocess.run([HEARTH, "pull", "--insecure", f"127.0.0.1:{a.port}/library/q3:v2"],
                           env=env, capture_output=True, text=True, timeout=120)
        c.check(r.returncode == 0 and "success" in r.stderr, f"CLI pull: {r.returncode} {r.stderr[-500:]}")
        # `hearth run` pulls a model it does not have.
        st, _ = a.json("POST", "/api/copy", {"source": "q3", "destination": "q3:v3"})
        r = subprocess.run([HEARTH, "run", "--insecure", f"127.0.0.1:{a.port}/library/q3:v3",
                            "hello"], env=env, capture_output=True, text=True, timeout=120)
        c.check(r.returncode == 0 and r.stdout.strip() != "", f"run with pull: {r.returncode} {r.stderr[-500:]}")
        st, tags = b.json("GET", "/api/tags")
        names = [m["name"] for m in tags["models"]]
        c.check(f"127.0.0.1:{a.port}/library/q3:v3" in names, f"B's models: {names}")
        c.check(store_problems(b.models) == [], "B's store")

        # Push from B to A: a model A does not have.
        other = os.path.join(SHARED, "fixtures", "llama-Q4_K_M.gguf")
        st, _ = b.json("POST", "/api/create", {"model": "mine", "from": other, "stream": False})
        target = f"127.0.0.1:{a.port}/library/pushed:latest"
        st, _ = b.json("POST", "/api/copy", {"source": "mine", "destination": target})
        c.check(st == 200, f"copy on B: {st}")
        st, _, lines = b.ndjson("/api/push", {"model": target, "insecure": True}, timeout=300)
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"push B -> A: {lines[-2:]}")
        statuses = [l.get("status", "") for l in lines]
        c.check(statuses[0] == "retrieving manifest" and "pushing manifest" in statuses and
                any(x.startswith("pushing ") and len(x) == 20 for x in statuses),
                f"push statuses: {statuses[:6]}")
        c.check(sha_file(os.path.join(a.models, "blobs", "sha256-" + sha_file(other))) ==
                sha_file(other), "pushed GGUF differs on A")
        rb = b.json("POST", "/api/generate", dict(ask, model="mine"))[1]
        ra = a.json("POST", "/api/generate", dict(ask, model="pushed"))[1]
        c.check(rb.get("response") and ra.get("response") == rb.get("response"),
                f"pushed model answers differently: {ra.get('response')!r} vs {rb.get('response')!r}")
        # Again: every blob is there already, nothing is uploaded.
        st, _, lines = b.ndjson("/api/push", {"model": target, "insecure": True}, timeout=60)
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"second push: {lines[-1:]}")
        # The CLI, to a server that does not take uploads (B itself).
        st, _ = a.json("POST", "/api/copy", {"source": "pushed", "destination": f"127.0.0.1:{b.port}/library/back:latest"})
        env_a = dict(os.environ, HEARTH_HOST=f"127.0.0.1:{a.port}")
        r = subprocess.run([HEARTH, "push", "--insecure", f"127.0.0.1:{b.port}/library/back:latest"],
                           env=env_a, capture_output=True, text=True, timeout=120)
        c.check(r.returncode != 0 and "HEARTH_REGISTRY_UPLOADS" in r.stderr,
                f"push to a server without uploads: {r.returncode} {r.stderr[-300:]}")
        st, body = b.json("POST", "/api/push", {"model": "nonexistent:latest", "stream": False})
        c.check(st == 404, f"push of an unknown model: {st} {body}")
    finally:
        a.stop()
        b.stop()

    # Push to an Ollama-protocol registry that wants a token.
    reg = FakeRegistry()
    reg.require_token = "pushtok"
    srv = Server(env=ENV)
    try:
        fixture = os.path.join(SHARED, "fixtures", "qwen2-Q4_K_M.gguf")
        target = f"127.0.0.1:{reg.port}/me/q2:v1"
        st, _ = srv.json("POST", "/api/create", {"model": target, "from": fixture, "stream": False})
        st, _, lines = srv.ndjson("/api/push", {"model": target, "insecure": True}, timeout=120)
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"push to the registry: {lines[-2:]}")
        mine = open(os.path.join(srv.models, "manifests", f"127.0.0.1:{reg.port}", "me", "q2", "v1"),
                    "rb").read()
        c.check(reg.manifests.get(("me", "q2", "v1")) == mine, "registry manifest differs")
        c.check(bytes(reg.blobs.get("sha256:" + sha_file(fixture), b"")) == open(fixture, "rb").read(),
                "registry blob differs")
        writes = [e for e in reg.log if e["method"] in ("POST", "PATCH", "PUT")]
        c.check(writes and all(e["auth"] == "Bearer pushtok" for e in writes),
                "uploads without the token")
        c.check(reg.errors == [], f"registry handler errors: {reg.errors[:1]}")
    finally:
        reg.stop()
        srv.stop()

    # Switching from Ollama keeps the models: OLLAMA_MODELS, then ~/.ollama/models in place.
    fixture = os.path.join(SHARED, "fixtures", "llama-Q8_0.gguf")
    home = tempfile.mkdtemp(prefix="hearth-home-")
    olm = os.path.join(home, "ollama-store")
    put_model(olm, "fromollama:latest", fixture)
    before = {f: sha_file(os.path.join(olm, "blobs", f)) for f in os.listdir(os.path.join(olm, "blobs"))}
    def serves_ollama_model(env, what):
        s = Server(models=home, env=env)  # HEARTH_MODELS="" in env: the default store
        try:
            st, tags = s.json("GET", "/api/tags")
            names = [m["name"] for m in tags["models"]] if st == 200 else tags
            c.check("fromollama:latest" in names, f"{what}: Ollama's model not listed: {names}")
            st, r = s.json("POST", "/api/generate", {"model": "fromollama", "prompt": "hi",
                                                     "stream": False, "options": {"num_predict": 2}})
            c.check(st == 200 and r.get("done"), f"{what}: Ollama's model does not run: {st} {r}")
        finally:
            s.proc.terminate()
            s.proc.wait()

    serves_ollama_model({"HEARTH_MODELS": "", "OLLAMA_MODELS": olm}, "OLLAMA_MODELS")
    os.makedirs(os.path.join(home, ".ollama"))
    shutil.move(olm, os.path.join(home, ".ollama", "models"))
    serves_ollama_model({"HEARTH_MODELS": "", "OLLAMA_MODELS": "", "HOME": home}, "~/.ollama/models")
    store = os.path.join(home, ".ollama", "models")
    after = {f: sha_file(os.path.join(store, "blobs", f)) for f in os.listdir(os.path.join(store, "blobs"))}
    c.check(before == after, "Ollama's blobs were changed")
    shutil.rmtree(home, ignore_errors=True)

    print(f"{c.checks} checks, {len(c.failures)} failures")
    raise SystemExit(1 if c.failures else 0)


if __name__ == "__main__":
    main()
