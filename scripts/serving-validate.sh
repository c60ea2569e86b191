#!/usr/bin/env bash
# Serving-mode validation on a GPU box (docs/serving.md, docs/validation.md).
#
# llem's only server that runs without vLLM/TensorRT-LLM is `llem serve`
# (the native engine, CPU). On a GPU machine this measures that server
# under a three-rate sweep with the composite sensor: NVML for the GPUs
# (idle here: the native engine does not use them, which the record shows)
# and the host's CPU/DRAM (RAPL, or the labelled estimate where the VM has
# none). It checks the sweep end to end at realistic durations: steady-state
# windows found at every rate, the highest saturating the server, energy
# per request and its distribution, latency percentiles, CIs over 3 cycles.
#
# The model and rates are the ones that bracketed llem serve's capacity on
# the H200 host's 16 vCPUs (docs/validation.md, 2026-12-04: a 135M model
# overloaded it at every rate, no steady state; this 15M one found steady
# states and saturated at 32 req/s). On a slower machine lower the rates.
#
# Usage: scripts/serving-validate.sh [OUT_DIR]   (about 4 minutes)
# Needs: Go (to build llem) or LLEM=/path/to/llem; no network.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-/tmp/llem-serving-validate}}
mkdir -p "$OUT"
LLEM=${LLEM:-}
if [[ -z "$LLEM" ]]; then
	LLEM="$OUT/llem"
	go build -o "$LLEM" ./cmd/llem
fi
THREADS=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))   # leave two cores to the load generator and llem
cat > "$OUT/serving-validate.cue" <<CUE
name: "serving-validate"
base: {
	model:             "random:llama-15m"
	backend:           "native"
	precision:         "fp32"
	n:                 64
	dataset: {source: "synthetic", input_len: 64, output_len: 32, distribution: "uniform", spread: 0.5}
	max_output_tokens: 32
	energy: sensor: "composite"
	baseline: duration_seconds: 10
	native: {batch_size: 16, threads: $THREADS}
	serving: {
		load: {duration_seconds: 20, arrivals: "poisson", warmup_requests: 4, timeout_seconds: 30}
		slo: {ttft_ms: 500, tpot_ms: 100}
		steady_state: {bin_seconds: 1, tolerance: 0.35, min_span_seconds: 6}
	}
}
grid: serving: load: rate: [2, 8, 32]
execution: {cycles: 3, order: "interleaved"}
CUE
"$LLEM" eval "$OUT/serving-validate.cue" --dry-run
"$LLEM" eval "$OUT/serving-validate.cue" --out "$OUT/results"
DIR=$(ls -d "$OUT"/results/serving-validate-* | tail -1)
"$LLEM" results show "$DIR"
"$LLEM" results show "$DIR" --json > "$OUT/summary.json"
# One line per record: rate, cycle, steady window, J/request (mean and
# per-request p50/p90), J/output-token, mean power, TTFT/TPOT p50/p99.
for f in "$DIR"/records/*/cycle-*.json; do
	python3 - "$f" <<'PY' 2>/dev/null || jq -c '{rate: .serving.load.rate_rps, cycle, status, steady: .serving.steady_state.duration_s, j_req: .efficiency.energy_per_request_j}' "$f"
import json, sys
r = json.load(open(sys.argv[1])); s = r.get("serving") or {}; ss = s.get("steady_state") or {}
e = r["efficiency"]; l = r["latency"]; d = s.get("energy_per_request_j") or {}
print(f"rate {s.get('load',{}).get('rate_rps')} cycle {r['cycle']} {r['status']}: steady {ss.get('duration_s','none')} s "
      f"(K {ss.get('target_running','-')}) {s.get('no_steady_state','')} | J/req {e.get('energy_per_request_j')} "
      f"p50 {d.get('p50_j')} p90 {d.get('p90_j')} | J/out-tok {e.get('energy_per_output_token_j')} | "
      f"{r['energy'].get('mean_power_w')} W | {r['throughput']['requests_per_sec']:.2f} req/s | "
      f"TTFT p50/p99 {l['ttft']['p50_ms']:.0f}/{l['ttft']['p99_ms']:.0f} ms TPOT p50 {l['tpot']['p50_ms']:.1f} ms | "
      f"goodput {s.get('goodput_rps')} | timeouts {s.get('timed_out')} | flags {r['flags']}")
PY
done | tee "$OUT/records.txt"
echo "results: $DIR"
