"""Ollama's key-signed registry auth (shared/design/ollama-api.md §4.5) through `hearth serve`:
the fake registry's token endpoint only answers a request signed by a registered ssh-ed25519 key
over the exact string Ollama signs, with a fresh ts and nonce (fake_registry.verify_token_request).

Checked: pull and push succeed with a key written by `ssh-keygen -t ed25519 -N ""`, every token
request signed by it and the token then sent to the registry only (never to the storage host);
another key fails clearly (the registry's reason, the key file, the public key to register), and
works once that key is registered; the key `hearth serve` generates when there is none (0600,
`.pub` beside it, shown in the log, readable by ssh-keygen); `hearth key` shows the key in use
($HEARTH_KEY, else ~/.ollama/id_ed25519, else ~/.hearth/id_ed25519 created); an encrypted key is
refused with a message saying so; a realm on another host is refused before any request to it."""
import os
import random
import shutil
import stat
import subprocess
import tempfile

from fake_registry import MODEL_MEDIA, FakeRegistry, digest_of
from harness import HEARTH, Checker
from serve_util import Server

MiB = 1 << 20
ENV = {
    "HEARTH_PULL_PART_MB": "1",
    "HEARTH_PULL_BACKOFF_MS": "50",
    "HEARTH_PULL_STALL_SECONDS": "2",
    "HEARTH_PULL_STREAMS": "4",
}


def ssh_keygen(path, passphrase=""):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "auth-test",
                    "-f", path], check=True)
    return open(path + ".pub").read().strip()


def key_field(line):
    return line.split()[1]


def hearth_key(env, *args):
    e = {k: v for k, v in os.environ.items() if k != "HEARTH_KEY"}
    e.update(env)
    return subprocess.run([HEARTH, "key", *args], env=e, capture_output=True, text=True,
                          timeout=60)


def main():
    c = Checker("registry-auth")
    tmp = tempfile.mkdtemp(prefix="hearth-auth-")
    reg = FakeRegistry()
    servers = []
    try:
        key_a = os.path.join(tmp, "ssh", "id_ed25519")
        os.makedirs(os.path.dirname(key_a))
        pub_a = ssh_keygen(key_a)
        reg.require_token = "token-for-a"
        reg.authorized_keys = [pub_a]
        data = random.Random(7).randbytes(3 * MiB + 17)
        reg.add_model("library", "m", "v1", [(MODEL_MEDIA, data)])
        base = f"127.0.0.1:{reg.port}"

        def pull(srv, name, stream=False):
            return srv.json("POST", "/api/pull", {"model": name, "insecure": True,
                                                  "stream": stream}, timeout=120)

        def push(srv, name):
            return srv.json("POST", "/api/push", {"model": name, "insecure": True,
                                                  "stream": False}, timeout=120)

        # 1. An ssh-keygen key: pull and push go through.
        srv = Server(env=dict(ENV, HEARTH_KEY=key_a))
        servers.append(srv)
        st, body = pull(srv, f"{base}/library/m:v1")
        c.check(st == 200 and body == {"status": "success"}, f"signed pull: {st} {body}")
        blob = os.path.join(srv.models, "blobs", "sha256-" + digest_of(data)[7:])
        c.check(os.path.exists(blob) and open(blob, "rb").read() == data, "pulled blob differs")
        toks = list(reg.token_requests)
        c.check(toks and all(t["refused"] is None for t in toks), f"token requests: {toks}")
        c.check(all(t["auth"].startswith(key_field(pub_a) + ":") for t in toks),
                "token request not signed with the key's public blob")
        c.check(all({"service", "scope", "ts", "nonce"} <= set(t["params"]) for t in toks),
                f"token request parameters: {[t['params'] for t in toks]}")
        v2 = [e for e in reg.log if e["path"].startswith("/v2/") and e["status"] in (200, 307)]
        c.check(v2 and all(e["auth"] == "Bearer token-for-a" for e in v2),
                "registry requests without the token")
        c.check(all(e["auth"] is None for e in reg.log if e["path"].startswith("/direct/")),
                "the token or signature went to the storage host")
        c.check(all(":" not in (e["auth"] or "Bearer") or e["path"] == "/token" for e in reg.log),
                "a signature was sent outside the token request")

        st, body = srv.json("POST", "/api/copy", {"source": f"{base}/library/m:v1",
                                                  "destination": f"{base}/me/pushed:v2"})
        c.check(st == 200, f"copy: {st} {body}")
        reg.clear_log()
        st, body = push(srv, f"{base}/me/pushed:v2")
        c.check(st == 200 and body == {"status": "success"}, f"signed push: {st} {body}")
        mine = open(os.path.join(srv.models, "manifests", base, "me", "pushed", "v2"), "rb").read()
        c.check(reg.manifests.get(("me", "pushed", "v2")) == mine, "pushed manifest differs")
        # (The fake's token is not scoped: the first challenge's token serves the whole push.)
        c.check(reg.token_requests and all(t["refused"] is None for t in reg.token_requests),
                f"push token requests: {reg.token_requests}")
        writes = [e for e in reg.log if e["method"] in ("POST", "PATCH", "PUT") and
                  e["status"] in (201, 202)]
        c.check(writes and all(e["auth"] == "Bearer token-for-a" for e in writes),
                "uploads without the token")

        # 2. hearth's own key, generated by `hearth serve`: not registered, so refused clearly.
        own = os.path.join(tmp, "own", "id_ed25519")
        srv2 = Server(env=dict(ENV, HEARTH_KEY=own))
        servers.append(srv2)
        c.check(os.path.exists(own) and os.path.exists(own + ".pub"), "no key generated")
        pub_own = open(own + ".pub").read().strip()
        c.check(stat.S_IMODE(os.stat(own).st_mode) == 0o600, "private key not 0600")
        c.check(stat.S_IMODE(os.stat(own + ".pub").st_mode) == 0o644, "public key not 0644")
        c.check(pub_own.startswith("ssh-ed25519 ") and pub_own in srv2.read_log(),
                f"the new public key is not shown: {srv2.read_log()[-400:]}")
        r = subprocess.run(["ssh-keygen", "-y", "-f", own], capture_output=True, text=True)
        c.check(r.returncode == 0 and r.stdout.split()[:2] == pub_own.split()[:2],
                f"ssh-keygen reads hearth's key differently: {r.stdout} {r.stderr}")
        reg.clear_log()
        st, body = pull(srv2, f"{base}/library/m:v1")
        err = body.get("error", "") if isinstance(body, dict) else str(body)
        c.check(st != 200 and "401" in err and "unknown public key" in err and own in err
                and key_field(pub_own) in err, f"pull with an unregistered key: {st} {body}")
        c.check(reg.token_requests and all(t["refused"] == "unknown public key"
                                           for t in reg.token_requests),
                f"token requests: {reg.token_requests}")
        c.check(not os.path.exists(os.path.join(srv2.models, "blobs", "sha256-" +
                                                digest_of(data)[7:])), "blob stored anyway")
        # Register hearth's own key: the same pull now works.
        reg.authorized_keys = [pub_a, pub_own]
        st, body = pull(srv2, f"{base}/library/m:v1")
        c.check(st == 200 and body == {"status": "success"}, f"pull with own key: {st} {body}")
        reg.authorized_keys = [pub_a]
        st, body = srv2.json("POST", "/api/copy", {"source": f"{base}/library/m:v1",
                                                   "destination": f"{base}/me/own:v1"})
        c.check(st == 200, f"copy on the second server: {st} {body}")
        st, body = push(srv2, f"{base}/me/own:v1")
        err = body.get("error", "") if isinstance(body, dict) else str(body)
        c.check(st != 200 and "unknown public key" in err, f"push, key unregistered: {st} {body}")
        c.check(("me", "own", "v1") not in reg.manifests, "push went through without the key")

        # 3. A realm on another host: refused before anything is sent there.
        reg.token_realm = f"http://localhost:{reg.port}/token"
        reg.clear_log()
        st, body = pull(srv, f"{base}/library/m:v1")
        err = body.get("error", "") if isinstance(body, dict) else str(body)
        c.check(st != 200 and "not the registry" in err and not reg.token_requests,
                f"foreign realm: {st} {body} {reg.token_requests}")
        reg.token_realm = None

        # 4. An encrypted key: refused with a message saying why.
        enc = os.path.join(tmp, "enc", "id_ed25519")
        os.makedirs(os.path.dirname(enc))
        ssh_keygen(enc, "a passphrase")
        r = hearth_key({"HEARTH_KEY": enc})
        c.check(r.returncode != 0 and "passphrase" in r.stderr, f"hearth key, encrypted: {r}")
        srv3 = Server(env=dict(ENV, HEARTH_KEY=enc))
        servers.append(srv3)
        st, body = pull(srv3, f"{base}/library/m:v1")
        err = body.get("error", "") if isinstance(body, dict) else str(body)
        c.check(st != 200 and "passphrase" in err, f"pull with an encrypted key: {st} {body}")
        c.check("passphrase" in srv3.read_log(), "serve does not warn about the encrypted key")

        # 5. `hearth key`: which key is used.
        r = hearth_key({"HEARTH_KEY": key_a})
        c.check(r.returncode == 0 and r.stdout.strip() == " ".join(pub_a.split()[:2]),
                f"hearth key: {r.stdout!r} vs {pub_a!r}")
        r = hearth_key({"HEARTH_KEY": key_a}, "--path")
        c.check(r.stdout.strip() == key_a, f"hearth key --path: {r.stdout!r}")
        home = os.path.join(tmp, "home")
        os.makedirs(os.path.join(home, ".ollama"))
        pub_ollama = ssh_keygen(os.path.join(home, ".ollama", "id_ed25519"))
        r = hearth_key({"HOME": home})
        c.check(r.returncode == 0 and r.stdout.strip() == " ".join(pub_ollama.split()[:2]),
                f"~/.ollama key not used: {r.stdout!r} {r.stderr!r}")
        c.check(not os.path.exists(os.path.join(home, ".hearth", "id_ed25519")),
                "a hearth key was made although Ollama's exists")
        home2 = os.path.join(tmp, "home2")
        os.makedirs(home2)
        r = hearth_key({"HOME": home2})
        made = os.path.join(home2, ".hearth", "id_ed25519")
        c.check(r.returncode == 0 and os.path.exists(made) and
                r.stdout.strip() == open(made + ".pub").read().strip(),
                f"~/.hearth key: {r.stdout!r} {r.stderr!r}")
        r2 = hearth_key({"HOME": home2})
        c.check(r2.stdout == r.stdout, "the hearth key changed between runs")

        c.check(reg.errors == [], f"registry handler errors: {reg.errors[:1]}")
    finally:
        for s in servers:
            s.stop()
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{c.checks} checks, {len(c.failures)} failures")
    raise SystemExit(1 if c.failures else 0)


if __name__ == "__main__":
    main()
