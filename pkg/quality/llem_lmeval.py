"""llem's wrapper around one lm-eval run (pkg/quality).

It speaks llem's worker protocol on stdout (hello, log, done or error; see
docs/worker-protocol.md) so the parent supervises it like any worker, and
runs lm-eval as a child whose whole output goes to stderr. With --serve it
first starts the server lm-eval scores (``llem serve`` for the native
backend) on a free port, waits until it answers, puts its completions URL
into lm-eval's arguments, and stops it afterwards.

Usage: python -u llem_lmeval.py [--serve-json ARGV_JSON] -- LM_EVAL_ARGV...
Standard library only: it runs in whatever Python has lm-eval.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

PLACEHOLDER = "{llem_base_url}"
_out_lock = threading.Lock()


def emit(kind, payload):
    line = {"event": kind, "t_ns": time.monotonic_ns()}
    line.update(payload)
    with _out_lock:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


def log(msg):
    emit("log", {"level": "info", "message": msg})


def fail(kind, msg, hint="", code=1):
    emit("error", {"kind": kind, "message": msg, "hint": hint})
    sys.exit(code)


def start_server(argv):
    """Start the server; return (process, base URL) once it answers."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=subprocess.PIPE)
    addr = None
    deadline = time.monotonic() + 600
    # `llem serve --port 0` prints "... on http://HOST:PORT/v1" on stderr.
    while addr is None:
        raw = proc.stderr.readline()
        if not raw:
            code = proc.wait()
            fail("internal", "the scoring server exited with status %d before it listened" % code,
                 "see worker.stderr in the scoring's work directory")
        text = raw.decode("utf-8", "replace")
        sys.stderr.write(text)
        m = re.search(r"on (http://\S+?)/v1\b", text)
        if m:
            addr = m.group(1)
        if time.monotonic() > deadline:
            proc.kill()
            fail("internal", "the scoring server did not listen within 600 s")
    threading.Thread(target=_copy, args=(proc.stderr,), daemon=True).start()
    while True:
        try:
            with urllib.request.urlopen(addr + "/v1/models", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None:
            fail("internal", "the scoring server exited with status %d" % proc.returncode)
        if time.monotonic() > deadline:
            proc.kill()
            fail("internal", "the scoring server did not answer /v1/models within 600 s")
        time.sleep(0.2)
    log("scoring server ready at " + addr)
    return proc, addr + "/v1/completions"


def _copy(stream):
    for raw in iter(stream.readline, b""):
        sys.stderr.write(raw.decode("utf-8", "replace"))
        sys.stderr.flush()


def run_lm_eval(argv):
    """Run lm-eval, copying its output to stderr; progress lines (tqdm's
    carriage-return updates) become log events at most every 2 s."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    last, buf = 0.0, b""
    while True:
        chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
        if not chunk:
            break
        sys.stderr.write(chunk.decode("utf-8", "replace"))
        sys.stderr.flush()
        buf = (buf + chunk)[-4096:]
        parts = re.split(rb"[\r\n]", buf)
        recent = [p for p in parts if p.strip()]
        now = time.monotonic()
        if recent and now - last >= 2:
            last = now
            log("lm-eval: " + recent[-1].decode("utf-8", "replace").strip()[:200])
    return proc.wait()


def main():
    args = sys.argv[1:]
    serve = None
    if args[:1] == ["--serve-json"]:
        serve = json.loads(args[1])
        args = args[2:]
    if args[:1] != ["--"] or len(args) < 2:
        fail("config", "usage: llem_lmeval.py [--serve-json ARGV] -- LM_EVAL_ARGV...")
    lm_argv = args[1:]
    sys.stdin.read()  # the run spec: the arguments say everything
    emit("hello", {"backend": "lm-eval", "protocol_version": 1,
                   "versions": {"python": "%d.%d.%d" % sys.version_info[:3]}, "pid": os.getpid()})
    if lm_argv[1:3] == ["-m", "lm_eval"]:
        probe = subprocess.run([lm_argv[0], "-c", "import importlib.util,sys; sys.exit(importlib.util.find_spec('lm_eval') is None)"])
        if probe.returncode != 0:
            fail("missing_package", "lm-eval is not installed in " + lm_argv[0],
                 "pip install lm-eval (with the backend's extras, e.g. lm-eval[vllm]) into that Python, or pass --python")
    server = None
    try:
        if serve:
            server, url = start_server(serve)
            lm_argv = [a.replace(PLACEHOLDER, url) for a in lm_argv]
        log("lm-eval: " + " ".join(lm_argv))
        code = run_lm_eval(lm_argv)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    if code != 0:
        fail("internal", "lm-eval exited with status %d" % code,
             "see error.stderr_tail and worker.stderr in the scoring's work directory", code=code if 0 < code < 126 else 1)
    emit("done", {"requests": 0, "input_tokens": 0, "output_tokens": 0})


if __name__ == "__main__":
    main()
