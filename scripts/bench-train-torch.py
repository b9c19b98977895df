#!/usr/bin/python3
"""PyTorch side of `npm run bench:train`: training tokens/s of the same model, batch, sequence
length and optimizer (AdamW, float32, CPU) as the onnxruntime-web run, on this machine.

    /usr/bin/python3 scripts/bench-train-torch.py --config DIR/config.json --batch 8 --seq 128 \
        --threads 1 --warmup 3 --steps 20 [--lora-rank 8 --lora-alpha 16]

The model is built from the Hugging Face config.json (GPT-2 or Llama) and randomly initialised:
speed does not depend on the values. With --lora-rank every block projection gets LoRA factors
(A (r, in), B (out, r), y = x W^T + s (x A^T) B^T) and only they train, as the studio's LoRA does.
Prints one JSON line {tokensPerSecond, msPerStep, blas, ...}: `blas` lists the BLAS libraries
loaded into this process. Debian's python3-torch is built against the generic libblas.so.3
interface, which resolves to the reference BLAS unless libopenblas0-pthread is installed — about
10x slower training, so a fair baseline needs OpenBLAS (scripts/setup-debian.sh --references).
Run with Debian's Python (python3-torch).
"""
import argparse
import json
import math
import os
import re
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def causal_attention(q, k, v):
    # q, k, v: (B, NH, T, HS)
    T = q.shape[-2]
    att = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(-1)
    return att @ v


class Gpt2Block(nn.Module):
    def __init__(self, C, NH, eps):
        super().__init__()
        self.NH = NH
        self.ln_1 = nn.LayerNorm(C, eps=eps)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=eps)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=-1)
        heads = lambda t: t.view(B, T, self.NH, C // self.NH).transpose(1, 2)  # noqa: E731
        y = causal_attention(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(P, C)
        self.h = nn.ModuleList([Gpt2Block(C, cfg["n_head"], cfg["layer_norm_epsilon"]) for _ in range(cfg["n_layer"])])
        self.ln_f = nn.LayerNorm(C, eps=cfg["layer_norm_epsilon"])

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.t()  # tied head


class RmsNorm(nn.Module):
    def __init__(self, C, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class LlamaBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, FF = cfg["hidden_size"], cfg["intermediate_size"]
        self.NH, self.NKV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.HS = cfg.get("head_dim") or C // self.NH
        self.input_layernorm = RmsNorm(C, cfg["rms_norm_eps"])
        self.q_proj = nn.Linear(C, self.NH * self.HS, bias=False)
        self.k_proj = nn.Linear(C, self.NKV * self.HS, bias=False)
        self.v_proj = nn.Linear(C, self.NKV * self.HS, bias=False)
        self.o_proj = nn.Linear(self.NH * self.HS, C, bias=False)
        self.post_attention_layernorm = RmsNorm(C, cfg["rms_norm_eps"])
        self.gate_proj = nn.Linear(C, FF, bias=False)
        self.up_proj = nn.Linear(C, FF, bias=False)
        self.down_proj = nn.Linear(FF, C, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.NH, self.HS).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.NKV, self.HS).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.NKV, self.HS).transpose(1, 2)

        def rope(t):
            half = self.HS // 2
            rotated = torch.cat([-t[..., half:], t[..., :half]], dim=-1)
            return t * cos + rotated * sin

        q, k = rope(q), rope(k)
        rep = self.NH // self.NKV
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, self.NH * self.HS)
        x = x + self.o_proj(y)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, V = cfg["hidden_size"], cfg["vocab_size"]
        self.embed_tokens = nn.Embedding(V, C)
        self.layers = nn.ModuleList([LlamaBlock(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RmsNorm(C, cfg["rms_norm_eps"])
        self.lm_head = nn.Linear(C, V, bias=False)
        self.HS = cfg.get("head_dim") or C // cfg["num_attention_heads"]
        self.theta = cfg.get("rope_theta", 10000.0)

    def forward(self, ids):
        T = ids.shape[1]
        inv = 1.0 / (self.theta ** (torch.arange(0, self.HS, 2, dtype=torch.float32) / self.HS))
        freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos(), emb.sin()
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.norm(x))


class LoraLinear(nn.Module):
    """A frozen nn.Linear plus trainable factors: PEFT's init (A kaiming-uniform, B zeros)."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(r, base.in_features))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + self.scale * ((x @ self.A.t()) @ self.B.t())


def add_lora(model, r, alpha):
    for p in model.parameters():
        p.requires_grad_(False)
    blocks = model.h if isinstance(model, Gpt2) else model.layers
    for block in blocks:
        for name, child in list(block.named_children()):
            if isinstance(child, nn.Linear):
                setattr(block, name, LoraLinear(child, r, alpha))


def blas_libraries():
    """The BLAS/LAPACK shared objects this process has loaded (resolved paths)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and re.search(r"blas|lapack|mkl", os.path.basename(parts[-1])):
                libs.add(os.path.realpath(parts[-1]))
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lora-rank", type=int, default=0, help="0: full fine-tuning")
    ap.add_argument("--lora-alpha", type=float, default=16)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with open(a.config) as f:
        cfg = json.load(f)
    model = Gpt2(cfg) if cfg["model_type"] == "gpt2" else Llama(cfg)
    if cfg["model_type"] != "gpt2" and cfg.get("tie_word_embeddings"):
        model.lm_head.weight = model.embed_tokens.weight
    if a.lora_rank:
        add_lora(model, a.lora_rank, a.lora_alpha)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    V = cfg["vocab_size"]
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, V, (a.batch, a.seq + 1), generator=gen) for _ in range(a.warmup + a.steps)]

    def step(b):
        opt.zero_grad(set_to_none=True)
        logits = model(b[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), b[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        return loss.item()

    for b in batches[: a.warmup]:
        step(b)
    t0 = time.perf_counter()
    for b in batches[a.warmup:]:
        step(b)
    sec = time.perf_counter() - t0
    print(json.dumps({
        "framework": f"torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in params),
        "blas": blas_libraries(),
        "steps": a.steps,
        "tokensPerSecond": a.steps * a.batch * a.seq / sec,
        "msPerStep": 1000 * sec / a.steps,
    }))


if __name__ == "__main__":
    main()
