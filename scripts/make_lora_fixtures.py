#!/usr/bin/python3
"""LoRA adapter fixtures in PEFT's on-disk format, and float64 references of what they mean.

PEFT is not a dependency: the files are written here from its documented layout.
adapter_config.json holds the LoraConfig fields (peft_type "LORA", r, lora_alpha, use_rslora,
target_modules, fan_in_fan_out, modules_to_save, rank_pattern, alpha_pattern, ...);
adapter_model.safetensors holds, per adapted module M of the wrapped model,
`base_model.model.M.lora_A.weight` (r, in_features) and `base_model.model.M.lora_B.weight`
(out_features, r), and per module in modules_to_save its whole replacement tensors under
`base_model.model.M.weight` / `.bias`. The update of M's weight is s * B @ A with
s = lora_alpha / r (use_rslora: lora_alpha / sqrt(r)), r and lora_alpha taken from
rank_pattern / alpha_pattern when a key matches M; GPT-2's Conv1D stores its weight (in, out),
so there (fan_in_fan_out) the update is (B @ A)^T.

Writes, from the tiny fixtures in e2e/fixtures:
  tiny-gpt2-lora/   c_attn (r 4, layer 1 r 2 via rank_pattern) and mlp.c_proj (alpha 3 via
                    alpha_pattern), fan_in_fan_out, modules_to_save ln_f; F32 factors
  tiny-llama-lora/  q_proj and v_proj, r 4, rsLoRA, BF16 factors (the base is BF16)
  reference/lora/<adapter>.safetensors   F64: the adapted model's tensors, base + update (or the
                    replacement), for every tensor the adapter changes, under the base's names
  reference/lora/<merge>.safetensors     F64: the task-arithmetic merge
                    base + sum_i w_i (theta_i - base) of a full fine-tune and the adapter, every
                    float tensor of the base (json sidecar: the recipe)

    /usr/bin/python3 scripts/make_lora_fixtures.py      (from the repository root)
"""
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_ppl import load_checkpoint, round_to  # noqa: E402  (the reference's own reader)

FX = "e2e/fixtures"
OUT = os.path.join(FX, "reference", "lora")
PREFIX = "base_model.model."


def write_safetensors(path, tensors):
    """tensors: name -> (dtype, float64 array); data in name order."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        dt, arr = tensors[name]
        if dt == "F64":
            raw = np.ascontiguousarray(arr, dtype="<f8").tobytes()
        elif dt == "F32":
            raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        elif dt == "BF16":
            f = round_to("BF16", arr).astype(np.float32)
            raw = (f.view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            raise ValueError(dt)
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def pattern_value(patterns, module, default):
    """PEFT's pattern lookup: a key matches module names that equal it or end with '.' + key."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def lora_config(**fields):
    config = {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": None, "bias": "none",
        "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True,
        "layers_pattern": None, "layers_to_transform": None, "lora_alpha": 8, "lora_dropout": 0.0,
        "modules_to_save": None, "peft_type": "LORA", "r": 4, "rank_pattern": {}, "revision": None,
        "target_modules": [], "task_type": "CAUSAL_LM", "use_dora": False, "use_rslora": False,
    }
    config.update(fields)
    return config


def make_adapter(name, base_dir, config, modules, factor_dtype, replaced, seed):
    """modules: (module path in the wrapped model, base tensor name, conv1d?) per adapted module;
    replaced: base tensor names of modules_to_save, replaced by base + noise."""
    gen = torch.Generator().manual_seed(seed)
    _, base = load_checkpoint(base_dir)
    adapter = {}
    adapted = {}
    for module, tensor, conv1d in modules:
        w = base[tensor][1]
        out_f, in_f = (w.shape[1], w.shape[0]) if conv1d else w.shape
        r = pattern_value(config["rank_pattern"], module, config["r"])
        alpha = pattern_value(config["alpha_pattern"], module, config["lora_alpha"])
        s = alpha / math.sqrt(r) if config["use_rslora"] else alpha / r
        a = torch.randn(r, in_f, generator=gen, dtype=torch.float64) / math.sqrt(in_f)
        b = torch.randn(out_f, r, generator=gen, dtype=torch.float64) * 0.05
        a = round_to(factor_dtype, a.numpy())
        b = round_to(factor_dtype, b.numpy())
        adapter[f"{PREFIX}{module}.lora_A.weight"] = (factor_dtype, a)
        adapter[f"{PREFIX}{module}.lora_B.weight"] = (factor_dtype, b)
        delta = s * (torch.from_numpy(b) @ torch.from_numpy(a)).numpy()
        adapted[tensor] = w + (delta.T if conv1d else delta)
    for module, tensor in replaced:
        dt, w = base[tensor]
        noise = torch.randn(*w.shape, generator=gen, dtype=torch.float64).numpy() * 0.1
        value = round_to(dt, w + noise)
        adapter[f"{PREFIX}{module}.{tensor.rsplit('.', 1)[1]}"] = (dt, value)
        adapted[tensor] = value
    folder = os.path.join(FX, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(folder, "adapter_model.safetensors"), adapter)
    write_safetensors(os.path.join(OUT, f"{name}.safetensors"), {k: ("F64", v) for k, v in adapted.items()})
    return adapted


def task_arithmetic(name, base_dir, members):
    """members: (fixture name, its tensors, weight); writes base + sum_i w_i (theta_i - base)."""
    _, base = load_checkpoint(base_dir)
    merged = {}
    for tensor, (dt, b) in base.items():
        if dt not in ("F32", "F16", "BF16"):
            continue
        acc = np.zeros_like(b)
        for _, theta, w in members:
            t = theta.get(tensor)
            if t is not None:
                acc += w * ((t[1] if isinstance(t, tuple) else t) - b)
        merged[tensor] = ("F64", b + acc)
    write_safetensors(os.path.join(OUT, f"{name}.safetensors"), merged)
    recipe = {"method": "task_arithmetic", "base": os.path.basename(base_dir), "models": [{"model": label, "weight": w} for label, _, w in members]}
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(recipe, f, indent=2)
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    L = 2
    gpt2 = lora_config(
        r=4, lora_alpha=8, fan_in_fan_out=True, target_modules=["c_attn", "mlp.c_proj"],
        rank_pattern={"h.1.attn.c_attn": 2}, alpha_pattern={"mlp.c_proj": 3}, modules_to_save=["ln_f"],
        base_model_name_or_path="tiny-gpt2",
    )
    gpt2_modules = [(f"transformer.h.{i}.attn.c_attn", f"transformer.h.{i}.attn.c_attn.weight", True) for i in range(L)]
    gpt2_modules += [(f"transformer.h.{i}.mlp.c_proj", f"transformer.h.{i}.mlp.c_proj.weight", True) for i in range(L)]
    gpt2_adapted = make_adapter("tiny-gpt2-lora", f"{FX}/tiny-gpt2", gpt2, gpt2_modules, "F32",
                                [("transformer.ln_f", "transformer.ln_f.weight"), ("transformer.ln_f", "transformer.ln_f.bias")], 17)

    llama = lora_config(r=4, lora_alpha=8, use_rslora=True, target_modules=["q_proj", "v_proj"], base_model_name_or_path="tiny-llama")
    llama_modules = [(f"model.layers.{i}.self_attn.{p}", f"model.layers.{i}.self_attn.{p}.weight", False) for i in range(L) for p in ("q_proj", "v_proj")]
    llama_adapted = make_adapter("tiny-llama-lora", f"{FX}/tiny-llama", llama, llama_modules, "BF16", [], 18)

    # A full fine-tune and the adapter, both as distribution vectors.
    task_arithmetic("merge-gpt2-ft-a0.7-lora0.5", f"{FX}/tiny-gpt2",
                    [("tiny-gpt2-ft-a", load_checkpoint(f"{FX}/tiny-gpt2-ft-a")[1], 0.7), ("tiny-gpt2-lora", gpt2_adapted, 0.5)])
    task_arithmetic("merge-llama-ft-a0.6-lora-0.8", f"{FX}/tiny-llama",
                    [("tiny-llama-ft-a", load_checkpoint(f"{FX}/tiny-llama-ft-a")[1], 0.6), ("tiny-llama-lora", llama_adapted, -0.8)])


if __name__ == "__main__":
    main()
