"""The CLI as a client of `hearth serve` (issue #4): list, ps, show (every flag), cp, rm, stop,
create -f Modelfile (upload with digest, errors naming the line), run one-shot and with piped
stdin (output equal to /api/chat's for the same conversation), the interactive REPL in a real
pseudo-terminal, --help on every verb, and the no-server message."""
import json
import os
import pty
import select
import shutil
import subprocess
import tempfile
import time

from harness import FIXTURES, HEARTH, Checker
from serve_util import Server, free_port

MODEL = os.path.join(FIXTURES, "llama-Q8_0.gguf")


def run(args, env, stdin=None, timeout=120):
    p = subprocess.run([HEARTH] + args, env=env, input=stdin, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def main():
    c = Checker("cli-client")
    env0 = dict(os.environ, HEARTH_HOST=f"127.0.0.1:{free_port()}")
    rc, out, err = run(["list"], env0)
    c.check(rc == 1 and "could not connect to hearth server" in err, f"no server: {rc} {err!r}")
    for verb in ("list", "ps", "show", "cp", "rm", "stop", "create", "run", "serve"):
        rc, out, err = run([verb, "--help"], env0)
        c.check(rc == 0 and "Usage" in out, f"{verb} --help: {rc} {out[:80]!r}")

    s = Server()
    work = tempfile.mkdtemp(prefix="hearth-cli-")
    env = dict(os.environ, HEARTH_HOST=f"127.0.0.1:{s.port}", HEARTH_MODELS=s.models)
    try:
        rc, out, _ = run(["list"], env)
        c.check(rc == 0 and out.split() == ["NAME", "ID", "SIZE", "MODIFIED"], f"empty list {out!r}")
        shutil.copy(MODEL, os.path.join(work, "tiny.gguf"))
        mf = os.path.join(work, "Modelfile")
        with open(mf, "w") as f:
            f.write('FROM ./tiny.gguf\nPARAMETER temperature 0\nPARAMETER top_k 1\n'
                    'PARAMETER num_predict 12\nPARAMETER stop "<|eot_id|>"\n'
                    'SYSTEM """You are terse."""\nMESSAGE user Hi\nMESSAGE assistant Hello!\n'
                    'LICENSE "MIT: do what you like"\n')
        rc, out, err = run(["create", "tiny", "-f", mf], env)
        c.check(rc == 0 and "success" in err, f"create: {rc} {err!r}")
        rc, out, _ = run(["list"], env)
        c.check("tiny:latest" in out, f"list after create: {out!r}")
        rc, out, _ = run(["show", "tiny"], env)
        for want in ("architecture", "llama", "quantization", "Q8_0", "Capabilities",
                     "completion", "You are terse.", "MIT: do what you like"):
            c.check(want in out, f"show lacks {want!r}: {out!r}")
        rc, params, _ = run(["show", "tiny", "--parameters"], env)
        c.check('"<|eot_id|>"' in params and "num_ctx" in params, f"--parameters {params!r}")
        rc, sysmsg, _ = run(["show", "tiny", "--system"], env)
        c.check(sysmsg.strip() == "You are terse.", f"--system {sysmsg!r}")
        rc, lic, _ = run(["show", "tiny", "--license"], env)
        c.check(lic.strip() == "MIT: do what you like", f"--license {lic!r}")
        rc, tmpl, _ = run(["show", "tiny", "--template"], env)
        c.check("start_header_id" in tmpl, "--template shows the GGUF chat template")
        # `show --modelfile` is a Modelfile that recreates the model.
        rc, modelfile, _ = run(["show", "tiny", "--modelfile"], env)
        mf2 = os.path.join(work, "Modelfile2")
        with open(mf2, "w") as f:
            f.write(modelfile)
        rc, _, err = run(["create", "again", "-f", mf2], env)
        c.check(rc == 0, f"recreate from show --modelfile: {err!r}")
        for flag in ("--parameters", "--system", "--license", "--template"):
            a = run(["show", "tiny", flag], env)[1]
            b = run(["show", "again", flag], env)[1]
            c.check(a == b, f"recreated model differs in {flag}: {a!r} vs {b!r}")
        rc, _, err = run(["show", "tiny", "--system", "--license"], env)
        c.check(rc == 1 and "only one of" in err, "two show flags refused")

        # Bad Modelfiles: the error names the line; nothing is created.
        with open(mf, "w") as f:
            f.write("FROM ./tiny.gguf\nPARAMETER temperature warm\n")
        rc, _, err = run(["create", "broken", "-f", mf], env)
        c.check(rc == 1 and "(line 2)" in err, f"bad Modelfile: {rc} {err!r}")
        rc, _, err = run(["create", "bad name!", "-f", mf2], env)
        c.check(rc == 1 and "invalid model name" in err, f"bad name: {err!r}")
        c.check("broken" not in run(["list"], env)[1], "a failed create left a model")

        # run one-shot == /api/chat with the same conversation (Modelfile SYSTEM + MESSAGEs).
        rc, out, err = run(["run", "tiny", "Tell", "me", "a", "story"], env)
        st, ref = s.json("POST", "/api/chat", {"model": "tiny", "stream": False, "messages": [
            {"role": "user", "content": "Tell me a story"}]})
        c.check(rc == 0 and out == ref["message"]["content"] + "\n",
                f"run one-shot {out!r} vs API {ref['message']['content']!r}")
        rc, out, err = run(["run", "tiny"], env, stdin="piped question\n")
        st, ref = s.json("POST", "/api/chat", {"model": "tiny", "stream": False, "messages": [
            {"role": "user", "content": "piped question\n"}]})
        c.check(rc == 0 and out == ref["message"]["content"] + "\n", f"run piped {out!r}")
        rc, out, err = run(["run", "tiny", "hi", "--verbose"], env)
        c.check("eval rate:" in err and "prompt eval count:" in err, f"--verbose stats {err!r}")
        # A model not in the store is pulled first, as `ollama run` does: from a registry that
        # does not have it (this server's own registry API), a clear "not found".
        rc, out, err = run(["run", "--insecure", f"127.0.0.1:{s.port}/library/missing:latest", "hi"],
                           env)
        c.check(rc == 1 and "pulling manifest" in err and "not found" in err,
                f"run unknown model: {err!r}")

        # The REPL in a pseudo-terminal.
        transcript = repl_session(env, [
            ("/set parameter num_predict 3", "Set parameter 'num_predict' to '3'"),
            ("/show parameters", "User defined parameters"),
            ("/set system Be brief.", "Set system message."),
            ('"""first line', None),
            ('second line"""', ">>> "),
            ("/show nonsense", "Available Commands"),
            ("/clear", "Cleared session context"),
            ("/save saved", "Created new model 'saved'"),
            # Ctrl-C stops a long answer, not the chat.
            ("/set parameter num_predict 100000", "Set parameter"),
            ("Talk for a long time", None),
            ("\x03", ">>> "),
            ("/load again", "Loading model 'again'"),
            ("/show system", "Be brief."),  # the session's system message stays
            ("/bye", None),
        ])
        c.check(transcript is not None, "REPL session did not complete")
        t0 = time.time()
        while "canceled by the client" not in s.read_log() and time.time() - t0 < 15:
            time.sleep(0.1)
        c.check("canceled by the client" in s.read_log(), "Ctrl-C did not stop the answer")
        c.check("saved:latest" in run(["list"], env)[1], "/save created no model")
        rc, sysmsg, _ = run(["show", "saved", "--system"], env)
        c.check(sysmsg.strip() == "Be brief.", f"/save kept the session system: {sysmsg!r}")

        # ps, stop, cp, rm.
        rc, out, _ = run(["ps"], env)
        c.check("tiny:latest" in out and "100% CPU" in out, f"ps: {out!r}")
        rc, out, err = run(["stop", "tiny"], env)
        c.check(rc == 0, f"stop: {err!r}")
        c.check("tiny:latest" not in run(["ps"], env)[1], "stop left the model loaded")
        rc, out, err = run(["stop", "tiny"], env)
        c.check(rc == 1 and "couldn't find model" in err, f"stop again: {err!r}")
        rc, out, _ = run(["cp", "tiny", "copy"], env)
        c.check(out.strip() == "copied 'tiny' to 'copy'", f"cp: {out!r}")
        rc, out, _ = run(["rm", "copy", "again"], env)
        c.check(out.split("\n")[:2] == ["deleted 'copy'", "deleted 'again'"], f"rm: {out!r}")
        rc, out, err = run(["rm", "copy"], env)
        c.check(rc == 1 and "not found" in err, f"rm missing: {err!r}")
        names = [l.split()[0] for l in run(["list"], env)[1].splitlines()[1:]]
        c.check(sorted(names) == ["saved:latest", "tiny:latest"], f"final list {names}")
    finally:
        s.stop()
        shutil.rmtree(work, ignore_errors=True)
    c.finish()


def repl_session(env, steps, timeout=60):
    """Drives `hearth run tiny` in a pty: sends each line, waits for the expected text."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(HEARTH, [HEARTH, "run", "tiny"], env)
    out = b""

    def wait_for(text, since=0):
        nonlocal out
        t0 = time.time()
        while text.encode() not in out[since:]:
            if time.time() - t0 > timeout:
                return False
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    return False
        return True

    try:
        if not wait_for(">>> "):
            return None
        for line, expect in steps:
            start = len(out)
            if line == "\x03":
                time.sleep(0.3)  # let the answer start
                os.write(fd, b"\x03")
            else:
                os.write(fd, line.encode() + b"\r")
            if expect and not wait_for(expect, start):
                print("REPL transcript:", out.decode(errors="replace")[-2000:])
                return None
        _, status = os.waitpid(pid, 0)
        return out.decode(errors="replace") if status == 0 else None
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


if __name__ == "__main__":
    main()
