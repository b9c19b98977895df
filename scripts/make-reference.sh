#!/bin/sh
# Regenerates e2e/fixtures/reference/*.json: perplexities of the fixture models (and of
# task-arithmetic merges of their fine-tunes) on the validation texts, and reference/tasks/*.json:
# task scores on the fixture task files, from the independent PyTorch float64 reference
# (scripts/reference_ppl.py, Debian's python3-torch). src/cli/ppl.test.ts runs `dem ppl` and
# src/cli/eval.test.ts `dem eval` on every case listed in these files and compare.
#
#   sh scripts/make-reference.sh        (from the repository root)
#
# The context (48) is below the fixtures' 64 positions and divides no text's token count, so every
# text spans several windows and the last one is shorter.
set -eu
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
REF=scripts/reference_ppl.py
FX=e2e/fixtures
OUT=$FX/reference
CTX=48
mkdir -p "$OUT"
rm -f "$OUT"/*.json

for model in tiny-gpt2 tiny-llama tiny-qwen2 tiny-phi3; do
  for text in prose code; do
    echo "$model / $text" >&2
    $PY $REF --model $FX/$model --text $FX/texts/$text.txt --context $CTX > "$OUT/$model.$text.json"
  done
done

# The families added later, one text each (their merges below take the other): RoPE scaling
# llama3 / linear / dynamic / yarn, Qwen3, Gemma 2 and OLMo 2, and the tokenizers they ship.
for case in tiny-llama3:prose tiny-llama2-linear:code tiny-llama-dynamic:prose tiny-qwen2-yarn:code \
  tiny-qwen3:prose tiny-gemma2:code tiny-olmo2:prose; do
  model=${case%%:*}
  text=${case#*:}
  echo "$model / $text" >&2
  $PY $REF --model $FX/$model --text $FX/texts/$text.txt --context $CTX > "$OUT/$model.$text.json"
done

# Task arithmetic (DEM): base + lambda * sum_i w_i (ft_i - base), rounded to the base's dtype.
echo "merge tiny-gpt2 + ft-a:0.5 + ft-c:-0.3 / prose" >&2
$PY $REF --base $FX/tiny-gpt2 --ft $FX/tiny-gpt2-ft-a:0.5 --ft $FX/tiny-gpt2-ft-c:-0.3 \
  --text $FX/texts/prose.txt --context $CTX > "$OUT/merge-gpt2-a0.5-c-0.3.prose.json"
echo "merge tiny-gpt2 + ft-a:0.6 + ft-b:0.6, lambda 0.8 / code" >&2
$PY $REF --base $FX/tiny-gpt2 --ft $FX/tiny-gpt2-ft-a:0.6 --ft $FX/tiny-gpt2-ft-b:0.6 --lambda 0.8 \
  --text $FX/texts/code.txt --context $CTX > "$OUT/merge-gpt2-a0.6-b0.6-l0.8.code.json"
echo "merge tiny-llama + ft-a:0.7 + ft-b:0.4 / code" >&2
$PY $REF --base $FX/tiny-llama --ft $FX/tiny-llama-ft-a:0.7 --ft $FX/tiny-llama-ft-b:0.4 \
  --text $FX/texts/code.txt --context $CTX > "$OUT/merge-llama-a0.7-b0.4.code.json"
echo "merge tiny-llama + ft-a:1 + ft-b:-0.5 / prose" >&2
$PY $REF --base $FX/tiny-llama --ft $FX/tiny-llama-ft-a:1 --ft $FX/tiny-llama-ft-b:-0.5 \
  --text $FX/texts/prose.txt --context $CTX > "$OUT/merge-llama-a1-b-0.5.prose.json"
echo "merge tiny-phi3 + ft-a:0.8 + ft-b:0.5, lambda 0.9 / code" >&2
$PY $REF --base $FX/tiny-phi3 --ft $FX/tiny-phi3-ft-a:0.8 --ft $FX/tiny-phi3-ft-b:0.5 --lambda 0.9 \
  --text $FX/texts/code.txt --context $CTX > "$OUT/merge-phi3-a0.8-b0.5-l0.9.code.json"

# Task scores (dem eval): the fixture task files on a checkpoint and on merges, context 48 (the
# long cloze context is cut from the left), at most 10 new tokens per generative item.
mkdir -p "$OUT/tasks"
rm -f "$OUT"/tasks/*.json
TASKS="--task $FX/tasks/cloze.jsonl --task $FX/tasks/answer.jsonl --context $CTX --max-tokens 10"
echo "tasks: tiny-gpt2" >&2
$PY $REF --model $FX/tiny-gpt2 $TASKS > "$OUT/tasks/tiny-gpt2.json"
echo "tasks: merge tiny-gpt2 + ft-a:0.5 + ft-c:-0.3" >&2
$PY $REF --base $FX/tiny-gpt2 --ft $FX/tiny-gpt2-ft-a:0.5 --ft $FX/tiny-gpt2-ft-c:-0.3 $TASKS > "$OUT/tasks/merge-gpt2-a0.5-c-0.3.json"
echo "tasks: merge tiny-llama + ft-a:0.7 + ft-b:0.4, lambda 0.9" >&2
$PY $REF --base $FX/tiny-llama --ft $FX/tiny-llama-ft-a:0.7 --ft $FX/tiny-llama-ft-b:0.4 --lambda 0.9 $TASKS > "$OUT/tasks/merge-llama-a0.7-b0.4-l0.9.json"
echo "merge tiny-llama3 + ft-a:0.7 + ft-b:0.4 / code" >&2
$PY $REF --base $FX/tiny-llama3 --ft $FX/tiny-llama3-ft-a:0.7 --ft $FX/tiny-llama3-ft-b:0.4 \
  --text $FX/texts/code.txt --context $CTX > "$OUT/merge-llama3-a0.7-b0.4.code.json"
echo "merge tiny-qwen3 + ft-a:1 + ft-b:-0.5 / code" >&2
$PY $REF --base $FX/tiny-qwen3 --ft $FX/tiny-qwen3-ft-a:1 --ft $FX/tiny-qwen3-ft-b:-0.5 \
  --text $FX/texts/code.txt --context $CTX > "$OUT/merge-qwen3-a1-b-0.5.code.json"
echo "merge tiny-gemma2 + ft-a:0.6 + ft-b:0.6, lambda 0.8 / prose" >&2
$PY $REF --base $FX/tiny-gemma2 --ft $FX/tiny-gemma2-ft-a:0.6 --ft $FX/tiny-gemma2-ft-b:0.6 --lambda 0.8 \
  --text $FX/texts/prose.txt --context $CTX > "$OUT/merge-gemma2-a0.6-b0.6-l0.8.prose.json"
echo "merge tiny-olmo2 + ft-a:0.5 + ft-b:0.9 / code" >&2
$PY $REF --base $FX/tiny-olmo2 --ft $FX/tiny-olmo2-ft-a:0.5 --ft $FX/tiny-olmo2-ft-b:0.9 \
  --text $FX/texts/code.txt --context $CTX > "$OUT/merge-olmo2-a0.5-b0.9.code.json"
