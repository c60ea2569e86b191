#!/usr/bin/env python3
"""Summarize recorded worker streams (JSON lines of the llem worker
protocol): per file, the requests, tokens, measured window, throughput,
TTFT and ITL percentiles, and the prefill/decode split. Used by
scripts/gpu-validate-pytorch.sh for runs made directly through a harness;
the authoritative protocol check is the Go one:

  LLEM_VALIDATE_STREAMS='validation-*/direct/*.jsonl' go test ./pkg/backend/pytorch -run TestRecordedStreams

  python3 scripts/summarize_worker_stream.py FILE.jsonl...   [--json out.json]
  python3 scripts/summarize_worker_stream.py --self-test
"""

import argparse
import json
import sys


def percentile(xs, p):
    """Nearest-rank percentile of a non-empty list (p in 0..100)."""
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def summarize(events):
    err = [e for e in events if e.get("event") == "error"]
    if err:
        return {"error": "%s: %s" % (err[0]["kind"], err[0]["message"]), "hint": err[0].get("hint", "")}
    done = [e for e in events if e.get("event") == "done"]
    phases = [e for e in events if e.get("event") == "phase"]
    reqs = [e for e in events if e.get("event") == "request"]
    if not done or not phases:
        return {"error": "incomplete stream (no done or no phases)"}
    prefill = decode = 0
    open_ = {}
    for e in phases:
        if e["state"] == "start":
            open_[e["name"]] = e["t_ns"]
        else:
            d = e["t_ns"] - open_.pop(e["name"])
            if e["name"] == "prefill":
                prefill += d
            else:
                decode += d
    window = max(e["t_ns"] for e in phases) - min(e["t_ns"] for e in phases)
    itl = [x for r in reqs for x in r.get("itl_ns", [])]
    ttft = [r["ttft_ns"] for r in reqs]
    d = done[0]
    logs = [e["message"] for e in events if e.get("event") == "log"]
    out = {
        "requests": d["requests"], "input_tokens": d["input_tokens"], "output_tokens": d["output_tokens"],
        "batches": len([e for e in phases if e["name"] == "prefill" and e["state"] == "start"]),
        "window_s": window / 1e9, "prefill_s": prefill / 1e9, "decode_s": decode / 1e9,
        "output_tok_per_s": d["output_tokens"] / (window / 1e9) if window else 0.0,
        "ttft_ms_p50": percentile(ttft, 50) / 1e6 if ttft else None,
        "ttft_ms_p99": percentile(ttft, 99) / 1e6 if ttft else None,
        "itl_ms_p50": percentile(itl, 50) / 1e6 if itl else None,
        "itl_ms_p99": percentile(itl, 99) / 1e6 if itl else None,
        "phase_split_method": next((m.split("=", 1)[1].split(":")[0] for m in logs
                                    if m.startswith("phase_split_method=")), "timestamps"),
    }
    hello = [e for e in events if e.get("event") == "hello"]
    if hello:
        out["versions"] = hello[0].get("versions", {})
    return out


def self_test():
    ev = [{"event": "hello", "t_ns": 1, "versions": {"torch": "x"}},
          {"event": "phase", "name": "prefill", "state": "start", "batch": 0, "t_ns": 1000},
          {"event": "phase", "name": "prefill", "state": "end", "batch": 0, "t_ns": 3000},
          {"event": "phase", "name": "decode", "state": "start", "batch": 0, "t_ns": 3000},
          {"event": "phase", "name": "decode", "state": "end", "batch": 0, "t_ns": 11000},
          {"event": "request", "ttft_ns": 2000, "itl_ns": [4000, 4000]},
          {"event": "done", "requests": 1, "input_tokens": 5, "output_tokens": 3}]
    s = summarize(ev)
    assert (s["window_s"], s["prefill_s"], s["decode_s"]) == (1e-5, 2e-6, 8e-6), s
    assert s["itl_ms_p50"] == 0.004 and s["ttft_ms_p50"] == 0.002 and s["batches"] == 1, s
    assert s["phase_split_method"] == "timestamps"
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([1, 2, 3, 4], 99) == 4
    assert "error" in summarize([{"event": "error", "kind": "oom", "message": "m"}])
    print("self-test ok")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--json")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        self_test()
        return
    rows = {}
    for path in a.files:
        with open(path) as f:
            rows[path] = summarize([json.loads(x) for x in f if x.strip()])
    cols = ("requests", "output_tokens", "window_s", "prefill_s", "decode_s", "output_tok_per_s",
            "ttft_ms_p50", "itl_ms_p50", "itl_ms_p99")
    print("file\t" + "\t".join(cols))
    for path, r in rows.items():
        if "error" in r:
            print("%s\tERROR %s" % (path, r["error"]))
            continue
        print(path + "\t" + "\t".join("%.4g" % r[c] if isinstance(r[c], float) else str(r[c]) for c in cols))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    if any("error" in r for r in rows.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
