#!/usr/bin/env bash
# GPU validation of the PyTorch backend (issue 7), for an NVIDIA machine with
# torch + transformers + nvidia-ml-py and no internet. Collects, under $OUT
# (default ./validation-pytorch-<date>):
#   env.txt          GPU, driver, Python packages, git commit, date
#   smoke.jsonl      the harness run directly on random:llama-15m (uniform
#                    lengths, sorted batches): does it work at all?
#   direct/*.jsonl   the study's 9 executions (random Llama-3.1-8B shape, bf16,
#                    batch 1/8/32 × 3 cycles) run directly through the
#                    harness, + direct.txt/json summaries (timings, tokens,
#                    TTFT/ITL; no energy: llem measures energy)
#   eval.*           `llem eval studies/h100-pytorch-validation.cue` with
#                    energy, when this llem can execute studies
#   overhead.*       harness vs a bare generate() loop (goal ≤ 2 %)
# Afterwards, on a machine with Go, check every recorded stream with llem's
# own protocol checker:
#   LLEM_VALIDATE_STREAMS="$OUT/smoke.jsonl $OUT/direct/*.jsonl" \
#     go test ./pkg/backend/pytorch -run TestRecordedStreams -v
# and put the numbers, the command and the date into docs/validation.md.
#
#   scripts/gpu-validate-pytorch.sh           # everything (~15 min on an H100)
#   scripts/gpu-validate-pytorch.sh --quick   # smoke + overhead on llama-3.2-1b (~3 min)
#
# PYTHON overrides the interpreter (default: python3 on PATH); LLEM the llem
# binary (default ./llem, built with `make build` when Go is present).
set -uo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
PYTHON=${PYTHON:-$(command -v python3)}
LLEM=${LLEM:-./llem}
OUT=${OUT:-validation-pytorch-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/direct"
FAILED=0
log() { printf '== %s\n' "$*" | tee -a "$OUT/steps.txt"; }
fail() { printf '!! %s\n' "$*" | tee -a "$OUT/steps.txt"; FAILED=1; }

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

HDIR=$(mktemp -d)
cp pkg/backend/pytorch/harness_pytorch.py pkg/backend/pyharness/llem_common.py "$HDIR/"

# run_harness NAME CONFIG_JSON BACKEND_ARGS_JSON: one run through the harness.
run_harness() {
  local name=$1 cfg=$2 args=$3
  printf '{"protocol_version":1,"run_id":"%s","cycle":0,"config":%s,"backend_args":%s,"prompts":[]}' \
    "$name" "$cfg" "$args" |
    "$PYTHON" -u "$HDIR/harness_pytorch.py" > "$OUT/$name.jsonl" 2> "$OUT/$name.stderr"
  local rc=$?
  if [[ $rc -ne 0 ]] || ! grep -q '"event":"done"' "$OUT/$name.jsonl"; then
    fail "$name: exit $rc; $(tail -n 1 "$OUT/$name.jsonl")"
    return 1
  fi
}

log "smoke: harness on random:llama-15m"
run_harness smoke '{"model":"random:llama-15m","backend":"pytorch","precision":"bf16","n":8,
 "dataset":{"source":"synthetic","input_len":32,"output_len":16,"distribution":"uniform","spread":0.25},
 "max_input_tokens":64,"max_output_tokens":16,"random_seed":1,
 "decoder":{"temperature":0,"do_sample":false},"warmup":{"enabled":true,"n_warmup":2}}' \
  '{"llem":{"batch_size":4,"batching":"sorted","torch_compile":false}}' || { echo "smoke failed: see $OUT/smoke.stderr"; exit 1; }
"$PYTHON" scripts/summarize_worker_stream.py "$OUT/smoke.jsonl"

if [[ $QUICK == 0 ]]; then
  log "direct: the study's runs through the harness (3 cycles, shuffled batch sizes)"
  # Same effective config as studies/h100-pytorch-validation.cue.
  CFG='{"model":"random:llama-3.1-8b","backend":"pytorch","precision":"bf16","n":32,
   "dataset":{"source":"synthetic","input_len":256,"output_len":128,"distribution":"fixed"},
   "max_input_tokens":256,"max_output_tokens":128,"random_seed":42,
   "decoder":{"preset":"deterministic"},"warmup":{"enabled":true,"n_warmup":2}}'
  for cycle in 1 2 3; do
    for bs in $(printf '1\n8\n32\n' | shuf --random-source=<(yes $cycle)); do
      run_harness "direct/bs${bs}-c${cycle}" "$CFG" \
        "{\"llem\":{\"batch_size\":$bs,\"batching\":\"fixed\",\"torch_compile\":false},\"from_pretrained\":{\"attn_implementation\":\"sdpa\"}}"
    done
  done
  "$PYTHON" scripts/summarize_worker_stream.py "$OUT"/direct/*.jsonl --json "$OUT/direct.json" | tee "$OUT/direct.txt"

  if [[ ! -x $LLEM ]] && command -v go >/dev/null; then make build; fi
  if [[ -x $LLEM ]]; then
    log "llem eval studies/h100-pytorch-validation.cue"
    start=$(date +%s)
    if "$LLEM" eval studies/h100-pytorch-validation.cue --python "$PYTHON" --out "$OUT/results" \
        > "$OUT/eval.stdout" 2> >(tee "$OUT/eval.stderr" >&2); then
      echo "eval wall seconds: $(( $(date +%s) - start ))" | tee -a "$OUT/steps.txt"
    else
      fail "llem eval failed (see $OUT/eval.stderr); the direct runs above still validate the harness"
    fi
  else
    fail "no llem binary ($LLEM): skipped llem eval"
  fi
fi

log "overhead: harness vs bare generate()"
if [[ $QUICK == 1 ]]; then
  "$PYTHON" scripts/bare_generate_reference.py --arch llama-3.2-1b --reps 2 --json "$OUT/overhead.json" \
    | tee "$OUT/overhead.txt" || fail "overhead measurement failed"
else
  "$PYTHON" scripts/bare_generate_reference.py --arch llama-3.1-8b --batch-sizes 1,8,32 --reps 3 \
    --json "$OUT/overhead.json" | tee "$OUT/overhead.txt" || fail "overhead measurement failed"
fi

log "done: results in $OUT (failures: $FAILED)"
exit $FAILED
