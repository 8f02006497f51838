"""The listen address as Ollama accepts it: a host name (`localhost:PORT`) is resolved and bound
(it was refused as an invalid address); a name that does not resolve is a clear error and a
non-zero exit, not a crash."""
import subprocess

from harness import HEARTH, Checker
from serve_util import Server, free_port


def main():
    c = Checker("server_listen")
    port = free_port()
    srv = Server(env={"HEARTH_HOST": f"localhost:{port}"}, port=port)
    try:
        st, body = srv.json("GET", "/api/version")
        c.check(st == 200 and "version" in body, f"localhost:{port} serves: {st} {body}")
    finally:
        srv.stop()
    p = subprocess.run([HEARTH, "serve"], env={"HEARTH_HOST": "no-such-host.invalid:1234",
                                               "HEARTH_MODELS": "/tmp/hearth-listen-test"},
                       capture_output=True, text=True, timeout=60)
    c.check(p.returncode > 0 and "invalid listen address" in p.stderr,
            f"unresolvable host: exit {p.returncode}, {p.stderr.strip()[:200]}")
    c.finish()


if __name__ == "__main__":
    main()
