#!/usr/bin/env bash
# GPU validation of the PyTorch backend (issue 7), for an NVIDIA machine
# with torch + transformers + nvidia-ml-py and no internet. Collects, under
# $OUT (default ./validation-pytorch-<date>):
#   env.txt        GPU, driver, Python packages
#   smoke.jsonl    the harness run directly on random:llama-15m (protocol check)
#   eval.*         `llem eval studies/h100-pytorch-validation.cue` (8B-shaped
#                  random Llama, bf16, batch 1/8/32, 3 cycles) and its results dir
#   overhead.*     harness vs bare generate() loop (goal ≤ 2 %)
# Then paste the numbers, command and date into docs/validation.md.
#
#   scripts/gpu-validate-pytorch.sh            # everything (~10–15 min on an H100)
#   scripts/gpu-validate-pytorch.sh --quick    # smoke + overhead on llama-3.2-1b only
#
# Needs ./llem (make build) or Go to build it; PYTHON overrides the
# interpreter (default: python3 on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
PYTHON=${PYTHON:-$(command -v python3)}
OUT=${OUT:-validation-pytorch-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
log() { printf '== %s\n' "$*" | tee -a "$OUT/steps.txt"; }

log "environment"
{
  date -u +"date_utc %Y-%m-%dT%H:%M:%SZ"
  echo "git $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,power.limit,memory.total,clocks.max.sm --format=csv || true
  "$PYTHON" - <<'PY'
import sys
print("python", sys.version.split()[0])
for m in ("torch", "transformers", "accelerate", "pynvml"):
    try:
        mod = __import__(m)
        print(m, getattr(mod, "__version__", "?"))
    except Exception as e:
        print(m, "MISSING", e)
import torch
print("cuda", torch.version.cuda, "available", torch.cuda.is_available())
PY
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

if [[ ! -x ./llem ]]; then
  log "building llem"
  make build
fi

log "smoke: harness on random:llama-15m (direct, validated by the parent's checker via llem eval below)"
SMOKE_DIR=$(mktemp -d)
cp pkg/backend/pytorch/harness_pytorch.py pkg/backend/pyharness/llem_common.py "$SMOKE_DIR/"
"$PYTHON" -u "$SMOKE_DIR/harness_pytorch.py" > "$OUT/smoke.jsonl" 2> "$OUT/smoke.stderr" <<'JSON'
{"protocol_version":1,"run_id":"smoke","cycle":0,
 "config":{"model":"random:llama-15m","backend":"pytorch","precision":"bf16","n":8,
   "dataset":{"source":"synthetic","input_len":32,"output_len":16,"distribution":"uniform","spread":0.25},
   "max_input_tokens":64,"max_output_tokens":16,"random_seed":1,
   "decoder":{"temperature":0,"do_sample":false},"warmup":{"enabled":true,"n_warmup":2}},
 "backend_args":{"llem":{"batch_size":4,"batching":"sorted","torch_compile":false}},
 "prompts":[]}
JSON
tail -n 3 "$OUT/smoke.jsonl"
grep -q '"event":"done"' "$OUT/smoke.jsonl" || { echo "smoke run failed; see $OUT/smoke.stderr"; exit 1; }

if [[ $QUICK == 0 ]]; then
  log "llem eval studies/h100-pytorch-validation.cue"
  start=$(date +%s)
  ./llem eval studies/h100-pytorch-validation.cue --python "$PYTHON" --out "$OUT/results" \
    > "$OUT/eval.stdout" 2> >(tee "$OUT/eval.stderr" >&2)
  echo "eval wall seconds: $(( $(date +%s) - start ))" | tee -a "$OUT/steps.txt"
  ./llem eval studies/h100-pytorch-validation.cue --python "$PYTHON" --out "$OUT/results" --json \
    --dry-run > "$OUT/eval.plan.json"
fi

log "overhead: harness vs bare generate()"
if [[ $QUICK == 1 ]]; then
  "$PYTHON" scripts/bare_generate_reference.py --arch llama-3.2-1b --reps 2 --json "$OUT/overhead.json" \
    | tee "$OUT/overhead.txt"
else
  "$PYTHON" scripts/bare_generate_reference.py --arch llama-3.1-8b --batch-sizes 1,8,32 --reps 3 \
    --json "$OUT/overhead.json" | tee "$OUT/overhead.txt"
fi

log "done: results in $OUT"
