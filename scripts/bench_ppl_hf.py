#!/usr/bin/env python3
"""Baseline of scripts/bench-ppl-gpu.ts: validation perplexity with Hugging Face transformers on
PyTorch (CUDA when present), float32 weights and float32 matmuls (TF32 off), windows as src/engine/model/perplexity.ts
defines them (consecutive windows of --context tokens, the last shorter; each predicts its tokens
1..n-1), --batch windows of equal length per forward. Prints JSON: nllMean, predicted, seconds
(one per timed pass), tokensPerSecond (predicted / median seconds), torch, device.
With --serve it prints that JSON (no timed passes) after its warm-up pass, then times one pass per
line "run" read from stdin, answering {"seconds": s} per line, until "quit" or end of input: the
caller interleaves these passes with its own.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--serve", action="store_true")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    ids = tok.encode(open(a.text, encoding="utf-8").read(), add_special_tokens=False).ids
    windows = [ids[i:i + a.context] for i in range(0, len(ids), a.context)]
    windows = [w for w in windows if len(w) >= 2]
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).to(device).eval()
    groups = []
    for i in range(0, len(windows), a.batch):
        chunk = windows[i:i + a.batch]
        for n in sorted({len(w) for w in chunk}, reverse=True):
            groups.append(torch.tensor([w for w in chunk if len(w) == n], device=device))
    predicted = sum(len(w) - 1 for w in windows)

    @torch.no_grad()
    def run():
        total = torch.zeros((), dtype=torch.float64, device=device)
        for x in groups:
            logits = model(x).logits.float()
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
            total += nll.double()
        if device == "cuda":
            torch.cuda.synchronize()
        return total.item() / predicted

    nll = run()  # warm-up
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    if a.serve:
        print(json.dumps({"nllMean": nll, "predicted": predicted, "torch": torch.__version__, "device": name}), flush=True)
        for line in sys.stdin:
            if line.strip() != "run":
                break
            t0 = time.perf_counter()
            run()
            print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
        return
    seconds = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - t0)
    print(json.dumps({"nllMean": nll, "predicted": predicted, "seconds": seconds, "tokensPerSecond": predicted / statistics.median(seconds),
                      "torch": torch.__version__, "device": name}))


if __name__ == "__main__":
    main()
