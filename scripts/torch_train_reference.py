#!/usr/bin/python3
"""Independent PyTorch reference for fine-tuning: trains a fixture checkpoint on the exact batches
in e2e/fixtures/reference/train/<fixture>.batches.json (written by
scripts/train-reference-batches.ts) with torch.optim.AdamW (float64) and the studio's schedule
(linear warm-up, cosine decay to lr * min_lr_ratio; step s = 1, 2, ...), and writes the loss of
every step to <fixture>.torch.json. The forward passes are scripts/reference_ppl.py's.

With --lora: a LoRA instead, on the same batches, starting from the studio trainer's initial
factors (<fixture>.lora-init/, a PEFT adapter folder: r, lora_alpha, use_rslora, A (r, in) and
B (out, r) per module) with the learning rate of <fixture>.lora.json: every base weight frozen,
each adapted matrix used as W + s * B @ A (transposed for GPT-2's Conv1D, stored (in, out)),
AdamW over the factors only; the losses go to <fixture>.lora.torch.json.

Run with Debian's Python (it has torch 1.13):
    /usr/bin/python3 scripts/torch_train_reference.py tiny-gpt2 tiny-llama
    /usr/bin/python3 scripts/torch_train_reference.py --lora tiny-gpt2 tiny-llama
"""
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_ppl as ref  # noqa: E402

# The reference forward converts numpy weights with T(); here the weights are trainable tensors.
ref.T = lambda x: x if torch.is_tensor(x) else torch.from_numpy(np.ascontiguousarray(x)).to(torch.float64)

ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "e2e", "fixtures", "reference", "train")
BUFFERS = (".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq")


def learning_rate(s, st):
    inv_w = 1.0 / st["warmupSteps"] if st["warmupSteps"] > 0 else 1e30
    p = min(1.0, max(0.0, (s - st["warmupSteps"]) / max(1, st["steps"] - st["warmupSteps"])))
    decay = st["minLrRatio"] + (1 - st["minLrRatio"]) * 0.5 * (1 + math.cos(math.pi * p))
    return st["lr"] * min(s * inv_w, decay)


def lora_factors(cfg, tensors, folder):
    """The adapter's modules as [(base name, A, B, s, conv1d)] with A and B trainable float64 tensors."""
    with open(os.path.join(folder, "adapter_config.json")) as f:
        ac = json.load(f)
    r, alpha = ac["r"], ac["lora_alpha"]
    s = alpha / math.sqrt(r) if ac.get("use_rslora") else alpha / r
    ad = ref.read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    out = []
    for key, (_dt, a) in ad.items():
        if ".lora_A." not in key:
            continue
        module = key[len("base_model.model."):key.index(".lora_A.")]
        b = ad[key.replace(".lora_A.", ".lora_B.")][1]
        name = next(n for n in (module + ".weight", "transformer." + module + ".weight", module[len("transformer."):] + ".weight") if n in tensors)
        conv1d = cfg["model_type"] == "gpt2"
        A = torch.tensor(a, dtype=torch.float64, requires_grad=True)
        B = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        out.append((name, A, B, s, conv1d))
    return out


def main(fixture, lora=False):
    with open(os.path.join(OUT, f"{fixture}.batches.json")) as f:
        job = json.load(f)
    st = dict(job["settings"])
    cfg, tensors = ref.load_checkpoint(os.path.join(ROOT, "e2e", "fixtures", fixture))
    w = {}
    params = []
    for name, (_dt, arr) in tensors.items():
        if name.endswith(BUFFERS):
            w[name] = arr
            continue
        t = torch.tensor(arr, dtype=torch.float64, requires_grad=not lora)
        w[name] = t
        if not lora:
            params.append(t)
    factors = []
    if lora:
        with open(os.path.join(OUT, f"{fixture}.lora.json")) as f:
            st["lr"] = json.load(f)["lr"]
        factors = lora_factors(cfg, tensors, os.path.join(OUT, f"{fixture}.lora-init"))
        params = [p for (_n, A, B, _s, _c) in factors for p in (A, B)]
    frozen = {name: w[name] for (name, *_rest) in factors}
    logits_fn = ref.logits_fn(cfg)
    opt = torch.optim.AdamW(params, lr=st["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=st["weightDecay"])
    losses = []
    for s, batch in enumerate(job["batches"], start=1):
        for g in opt.param_groups:
            g["lr"] = learning_rate(s, st)
        opt.zero_grad()
        for name, A, B, scale, conv1d in factors:
            delta = scale * (B @ A)  # (out, in)
            w[name] = frozen[name] + (delta.t() if conv1d else delta)
        total = 0
        for seq in batch:
            logits = logits_fn(cfg, w, seq[:-1])
            total = total + torch.nn.functional.cross_entropy(logits, torch.tensor(seq[1:]), reduction="sum")
        loss = total / (len(batch) * (len(batch[0]) - 1))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out = os.path.join(OUT, f"{fixture}.lora.torch.json" if lora else f"{fixture}.torch.json")
    with open(out, "w") as f:
        json.dump({"fixture": fixture, "torch": torch.__version__, "dtype": "float64", **({"lora": True, "lr": st["lr"]} if lora else {}), "losses": losses}, f, indent=1)
        f.write("\n")
    print(f"{out}: loss {losses[0]:.4f} -> {losses[-1]:.4f} over {len(losses)} steps")


if __name__ == "__main__":
    args = sys.argv[1:]
    lora = "--lora" in args
    args = [a for a in args if a != "--lora"]
    for fx in args or ["tiny-gpt2", "tiny-llama"]:
        main(fx, lora)
