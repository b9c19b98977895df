#!/usr/bin/env bash
# Every GPU measurement in one go, on a machine with a real GPU and the .gpu/ folder made by
# scripts/gpu/bundle.sh (no npm, no node_modules needed). Writes into OUTDIR (and bench-results/):
#   large-check.json      dem ppl at context 1024 on realistic-size checkpoints vs the float64
#                         PyTorch reference (scripts/large-check.sh)
#   ppl-gpu.json          perplexity tokens/s, ours vs Hugging Face transformers (needs torch +
#                         transformers in PY), per-kernel GPU times
#   merge.json            re-merge bandwidth vs copyBufferToBuffer and a WGSL copy kernel
#   scale.json            real-size memory and latency (when scripts/bench-scale.ts exists)
#   log.txt               everything printed
#   bash scripts/gpu/run.sh OUTDIR [--smoke]   (--smoke: tiny sizes, to check the bundle anywhere)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:?usage: scripts/gpu/run.sh OUTDIR [--smoke]}
SMOKE=${2:-}
G=$PWD/.gpu
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec > >(tee "$OUT/log.txt") 2>&1
[ -d "$G" ] || { echo "error: no .gpu/ here: run scripts/gpu/bundle.sh where npm works and carry .gpu/" >&2; exit 1; }
[ -x "$G/node" ] || { xz -dc "$G/node.xz" > "$G/node" && chmod +x "$G/node"; }
D=$G/node_modules/webgpu/dist/linux-x64
[ -e "$D/dawn.node" ] || xz -dc "$D/dawn.node.xz" > "$D/dawn.node"
export LD_LIBRARY_PATH=$G/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
NODE=$G/node
PY=${PY:-python3}
status=0
step() { printf '\n==> %s (%s)\n' "$1" "$(date -u +%T)"; }
run() { "$@" || { echo "FAILED ($?): $*"; status=1; }; }

step "machine"
echo "node $($NODE --version); $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
$PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>/dev/null || echo "no torch in $PY"
HAVE_HF=0; $PY -c 'import transformers' 2>/dev/null && HAVE_HF=1

step "large checkpoints and their float64 reference (large-check)"
if [ "$SMOKE" = --smoke ]; then
  # The tiny fixtures instead, against their committed float64 references.
  mkdir -p "$OUT/large/models"
  for m in tiny-gpt2 tiny-llama; do
    cp -r "e2e/fixtures/$m" "$OUT/large/models/$m"
    run $NODE "$G/bin/dem.mjs" ppl --model "e2e/fixtures/$m" --text e2e/fixtures/texts/prose.txt --context 48 --json --quiet > "$OUT/$m.prose.dem.json"
    run $NODE -e '
      const [got, ref] = process.argv.slice(1).map((f) => JSON.parse(require("fs").readFileSync(f, "utf8")));
      const rel = Math.abs(got.texts[0].nll_mean - ref.nll_mean) / ref.nll_mean;
      console.log(`${process.argv[1]}: nll ${got.texts[0].nll_mean} vs float64 ${ref.nll_mean}, rel ${rel.toExponential(2)}`);
      process.exit(rel <= 1e-4 ? 0 : 1);' "$OUT/$m.prose.dem.json" "e2e/fixtures/reference/$m.prose.json"
  done
else
  run env DEM="$NODE $G/bin/dem.mjs" MAKE="$NODE $G/bin/make-fixtures.mjs" PY="$PY" bash scripts/large-check.sh "$OUT/large"
  [ -f "$OUT/large/summary.json" ] && cp "$OUT/large/summary.json" "$OUT/large-check.json"
fi
MODELS=$(ls -d "$OUT/large/models"/*/ 2>/dev/null)

step "perplexity throughput, ours vs transformers (bench:ppl-gpu)"
if [ "$HAVE_HF" = 1 ]; then
  run env BENCH_OUT="$OUT/ppl-gpu.json" PY="$PY" ${SMOKE:+CONTEXT=48 REPS=2} $NODE "$G/bin/bench-ppl-gpu.mjs" $MODELS
else
  echo "skipped: transformers is not importable in $PY"
fi

step "merge bandwidth (bench:merge)"
run env BENCH_OUT="$OUT/merge.json" ${SMOKE:+COUNTS=2 REPS=1 STREAM_REPS=1 MIN_TRIAL_S=0.05} $NODE "$G/bin/bench-merge.mjs"

if [ -f "$G/bin/bench-scale.mjs" ]; then
  step "real sizes (bench:scale)"
  run env BENCH_OUT="$OUT/scale.json" ${SMOKE:+BENCH_SMOKE=1} $NODE "$G/bin/bench-scale.mjs"
fi

mkdir -p bench-results
for f in ppl-gpu merge scale large-check; do [ -f "$OUT/$f.json" ] && [ "$SMOKE" != --smoke ] && cp "$OUT/$f.json" "bench-results/$f.json"; done
step "done (status $status)"
exit $status
