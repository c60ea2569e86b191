#!/usr/bin/env bash
# Validate llem's energy measurement on a real NVIDIA GPU (issue 3).
#
# Needs: an NVIDIA GPU and driver, python3 with torch and nvidia-ml-py, and
# either a Go toolchain with cgo or a prebuilt test binary (GPUVAL_BIN, from
# `go test -tags gpu -c -o gpuval.test ./pkg/measure` on any linux/amd64
# machine with glibc <= the GPU machine's).
#
# What it does: testdata/gpu_load.py runs idle (10 s), steady bf16 matmul
# (LOAD_SECONDS, default 60 s), bursty (20 s) and short (1.2 s) windows and
# reads the NVML energy counter itself around each; llem samples the same GPU
# and measures the same windows. It prints llem vs the in-process counter
# (goal: steady within 0.5 %), llem's counter vs instant-power integral, and
# the sampler's CPU cost, and writes env.json, result.json, timeline.json,
# nvidia-smi.txt and gpu-validation.log to OUTDIR. If LLEM points at a llem
# binary, `llem env` and `llem env --json` are saved too.
#
# usage: scripts/gpu-validate.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "${1:-validation-out}" && cd "${1:-validation-out}" && pwd)
BIN=${GPUVAL_BIN:-}
if [ -z "$BIN" ]; then
	go test -tags gpu -c -o "$OUT/gpuval.test" ./pkg/measure
	BIN=$OUT/gpuval.test
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
{ date -u; nvidia-smi; nvidia-smi -q -d POWER,CLOCK,PERFORMANCE; } >"$OUT/nvidia-smi.txt" 2>&1 || true
if [ -n "${LLEM:-}" ]; then
	"$LLEM" env >"$OUT/env.txt" 2>&1 || true
	"$LLEM" env --json >"$OUT/llem-env.json" 2>/dev/null || true
fi
cd pkg/measure
LLEM_VALIDATE_OUT=$OUT "$BIN" -test.run '^TestGPUValidation$' -test.v -test.timeout 9m 2>&1 | tee "$OUT/gpu-validation.log"
exit "${PIPESTATUS[0]}"
