"""Wall time of llem's start-up, as a user waits for it (issue 15's target: <= 20 ms).

Usage: python3 scripts/startup-time.py LLEM_BINARY HELLO_BINARY

Runs each case 65 times (the first 5 discarded), through subprocess like a shell would,
and prints p50/min/p90 in ms. HELLO_BINARY is a static Go "hello" (the floor of process
start on the machine). The Go benchmark BenchmarkStartup (cmd/llem, make bench) measures
the same cases; this script needs only Python, for machines without Go (the GPU host).
"""
import subprocess, time, os, statistics, sys
def t(cmd, env=None, n=60):
    ts = []
    e = dict(os.environ, **(env or {}))
    for i in range(n + 5):
        s = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=e)
        d = time.perf_counter() - s
        if i >= 5:
            ts.append(d * 1000)
    ts.sort()
    return "p50 %.1f ms  min %.1f ms  p90 %.1f ms" % (ts[len(ts)//2], ts[0], ts[int(len(ts)*0.9)])
b = sys.argv[1]
print("hello (static Go, baseline):", t([sys.argv[2]]))
print("llem --version:", t([b, "--version"]))
print("llem params native:", t([b, "params", "native"]))
print("llem params (all backends):", t([b, "params"]))
print("completion 'llem params n':", t([b], {"COMP_LINE": "llem params n", "COMP_POINT": "15"}))
print("completion 'llem ev':", t([b], {"COMP_LINE": "llem ev", "COMP_POINT": "7"}))
