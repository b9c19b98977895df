#!/bin/bash
# Whole-model check at realistic sizes, for a machine with a real GPU (not part of `npm test`:
# on SwiftShader it takes long). Writes the large fixtures (scripts/make-fixtures.ts --large: GPT-2
# small, 124M F32; a GQA Llama, 110M BF16), runs `dem ppl` at context 1024 on both validation
# texts and compares with the float64 PyTorch reference (scripts/reference_ppl.py).
#   scripts/large-check.sh OUTDIR        (DEM, MAKE, PY override the commands)
set -euo pipefail
OUT=${1:?usage: scripts/large-check.sh OUTDIR}
DEM=${DEM:-node src/cli/dem.mjs}
MAKE=${MAKE:-npx tsx scripts/make-fixtures.ts}
PY=${PY:-/usr/bin/python3}
mkdir -p "$OUT"
$MAKE --large "$OUT/models"
for m in gpt2-small llama-gqa; do
  for t in prose code; do
    echo "$m / $t" >&2
    $DEM ppl --model "$OUT/models/$m" --text "e2e/fixtures/texts/$t.txt" --context 1024 --json --quiet > "$OUT/$m.$t.dem.json"
    $PY scripts/reference_ppl.py --model "$OUT/models/$m" --text "e2e/fixtures/texts/$t.txt" --context 1024 > "$OUT/$m.$t.ref.json"
  done
done
$PY - "$OUT" <<'PYEOF'
import glob, json, os, sys
out = sys.argv[1]
rows = []
for ref_path in sorted(glob.glob(os.path.join(out, "*.ref.json"))):
    name = os.path.basename(ref_path)[: -len(".ref.json")]
    ref = json.load(open(ref_path))
    got = json.load(open(os.path.join(out, name + ".dem.json")))["texts"][0]
    rel = abs(got["nll_mean"] - ref["nll_mean"]) / abs(ref["nll_mean"])
    same_ids = got["ids_head"] == ref["ids_head"] and got["predicted"] == ref["predicted"]
    rows.append({"case": name, "predicted": ref["predicted"], "context": ref["context"], "nll_mean": got["nll_mean"],
                 "nll_mean_ref": ref["nll_mean"], "relative_error": rel, "same_tokens": same_ids})
    print(f"{name:22s} tokens {ref['predicted']:5d}  dem {got['nll_mean']:.9f}  float64 {ref['nll_mean']:.9f}  rel {rel:.2e}  ids {'same' if same_ids else 'DIFFER'}")
json.dump(rows, open(os.path.join(out, "summary.json"), "w"), indent=2)
bad = [r for r in rows if not r["same_tokens"] or r["relative_error"] > 1e-5]
sys.exit(1 if bad else 0)
PYEOF
