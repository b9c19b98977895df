#!/usr/bin/env python3
"""Pretrains the demo's base model: a small GPT-2 on the four distributions' pretraining text.

It stands in for downloading a pretrained model (none exists offline): the studio's own
in-browser trainer is far too slow to pretrain a model of a few million parameters, so this
script does it with PyTorch on the CPU; everything after it (the fine-tunes, the data-mixing
baseline) is made by the studio's trainer (scripts/make-demo.ts).

Input: .demo-work/data/ from `npm run make-demo-data` (config.json, tokenizer.json, token ids).
Output: .demo-work/base/ in Hugging Face layout (config.json, model.safetensors in F32,
tokenizer.json) and pretrain.json (settings, losses, time), which make-demo records in the
manifest.

Resumable: a checkpoint (model, optimiser, step, elapsed time, log) is written atomically every
--checkpoint-minutes and on --max-minutes or Ctrl-C; a new run continues from it. Batches are a
function of (seed, step) alone, so a resumed run draws the same batches as an uninterrupted one.

The model is GPT-2 as transformers' GPT2LMHeadModel computes it (pre-norm blocks, gelu_new,
learned positions, tied embedding and head, Conv1D weights stored (in, out)); written from that
definition, sharing no code with the TypeScript.

    nice -n 10 /usr/bin/python3 scripts/demo/pretrain.py              # or --steps N --max-minutes M
"""
import argparse
import json
import math
import os
import signal
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
WORK = os.path.join(ROOT, ".demo-work")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(WORK, "data"))
    p.add_argument("--run", default=os.path.join(WORK, "pretrain"), help="checkpoints and log")
    p.add_argument("--out", default=os.path.join(WORK, "base"), help="the HF-layout base model")
    p.add_argument("--steps", type=int, default=540)
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--decay-fraction", type=float, default=0.25, help="linear decay over the last fraction of steps")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=20240617)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--eval-windows", type=int, default=16, help="held-out windows per distribution")
    p.add_argument("--checkpoint-minutes", type=float, default=5)
    p.add_argument("--max-minutes", type=float, default=0, help="stop (checkpointed) after this long; 0 = run to the end")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


# ---- model ------------------------------------------------------------------------------------
def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class Gpt2(torch.nn.Module):
    """Parameters under GPT-2's own names; Conv1D weights (in, out) so export is a plain copy."""

    def __init__(self, cfg):
        super().__init__()
        self.C, self.L, self.NH = cfg["n_embd"], cfg["n_layer"], cfg["n_head"]
        self.V, self.P, self.eps = cfg["vocab_size"], cfg["n_positions"], cfg["layer_norm_epsilon"]
        C = self.C
        shapes = {"wte.weight": (self.V, C), "wpe.weight": (self.P, C)}
        for i in range(self.L):
            h = f"h.{i}."
            shapes.update({
                h + "ln_1.weight": (C,), h + "ln_1.bias": (C,),
                h + "attn.c_attn.weight": (C, 3 * C), h + "attn.c_attn.bias": (3 * C,),
                h + "attn.c_proj.weight": (C, C), h + "attn.c_proj.bias": (C,),
                h + "ln_2.weight": (C,), h + "ln_2.bias": (C,),
                h + "mlp.c_fc.weight": (C, 4 * C), h + "mlp.c_fc.bias": (4 * C,),
                h + "mlp.c_proj.weight": (4 * C, C), h + "mlp.c_proj.bias": (C,),
            })
        shapes.update({"ln_f.weight": (C,), "ln_f.bias": (C,)})
        self.names = list(shapes)
        self.w = torch.nn.ParameterDict({n.replace(".", "__"): torch.nn.Parameter(torch.empty(s)) for n, s in shapes.items()})
        self.register_buffer("mask", torch.triu(torch.ones(self.P, self.P, dtype=torch.bool), 1), persistent=False)

    def p(self, name):
        return self.w[name.replace(".", "__")]

    def init(self, seed):
        """GPT-2's scheme: N(0, 0.02²), residual projections 0.02/sqrt(2L), positions 0.01, norms 1, biases 0."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for n in self.names:
                t = self.p(n)
                if n.endswith("ln_1.weight") or n.endswith("ln_2.weight") or n == "ln_f.weight":
                    t.fill_(1.0)
                elif n.endswith(".bias"):
                    t.zero_()
                else:
                    std = 0.02 / math.sqrt(2 * self.L) if n.endswith("c_proj.weight") else 0.01 if n == "wpe.weight" else 0.02
                    t.copy_(torch.randn(t.shape, generator=g) * std)

    def forward(self, ids):
        """(B, T) ids -> (B, T, V) logits."""
        B, T = ids.shape
        C, NH = self.C, self.NH
        HS = C // NH
        x = self.p("wte.weight")[ids] + self.p("wpe.weight")[:T]
        for i in range(self.L):
            h = f"h.{i}."
            a = F.layer_norm(x, (C,), self.p(h + "ln_1.weight"), self.p(h + "ln_1.bias"), self.eps)
            qkv = a @ self.p(h + "attn.c_attn.weight") + self.p(h + "attn.c_attn.bias")
            q, k, v = (t.view(B, T, NH, HS).transpose(1, 2) for t in qkv.split(C, dim=2))
            att = (q @ k.transpose(-1, -2)) / math.sqrt(HS)
            att = att.masked_fill(self.mask[:T, :T], float("-inf")).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, C)
            x = x + y @ self.p(h + "attn.c_proj.weight") + self.p(h + "attn.c_proj.bias")
            m = F.layer_norm(x, (C,), self.p(h + "ln_2.weight"), self.p(h + "ln_2.bias"), self.eps)
            m = gelu_new(m @ self.p(h + "mlp.c_fc.weight") + self.p(h + "mlp.c_fc.bias"))
            x = x + m @ self.p(h + "mlp.c_proj.weight") + self.p(h + "mlp.c_proj.bias")
        x = F.layer_norm(x, (C,), self.p("ln_f.weight"), self.p("ln_f.bias"), self.eps)
        return x @ self.p("wte.weight").T


# ---- data -------------------------------------------------------------------------------------
class Data:
    def __init__(self, folder):
        with open(os.path.join(folder, "meta.json")) as f:
            self.meta = json.load(f)
        self.ids = [d["id"] for d in self.meta["distributions"]]
        self.weights = np.array([d["weight"] for d in self.meta["distributions"]], dtype=np.float64)
        self.weights /= self.weights.sum()
        load = lambda name: np.fromfile(os.path.join(folder, name), dtype="<u2").astype(np.int64)
        self.train = [load(f"{i}.train.bin") for i in self.ids]
        self.held = [load(f"{i}.heldout.bin") for i in self.ids]

    def batch(self, seed, step, B, T):
        """B windows of T + 1 tokens: a distribution by the sampling weights, then a random start."""
        rng = np.random.default_rng([seed, step])
        which = rng.choice(len(self.ids), size=B, p=self.weights)
        rows = []
        for d in which:
            s = self.train[d]
            start = rng.integers(0, len(s) - T - 1)
            rows.append(s[start:start + T + 1])
        x = torch.from_numpy(np.stack(rows))
        return x[:, :-1], x[:, 1:]


def lr_at(step, a):
    """Linear warm-up, constant, then linear decay to min_lr_ratio over the last decay_fraction."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    decay_start = int(a.steps * (1 - a.decay_fraction))
    if step < decay_start:
        return a.lr
    frac = (step - decay_start) / max(1, a.steps - decay_start)
    return a.lr * (1 - (1 - a.min_lr_ratio) * frac)


@torch.no_grad()
def held_out_loss(model, data, T, windows):
    """Mean next-token loss per distribution over up to `windows` consecutive held-out windows."""
    model.eval()
    out = {}
    for name, s in zip(data.ids, data.held):
        n = min(windows, (len(s) - 1) // T)
        x = torch.from_numpy(np.stack([s[i * T:(i + 1) * T + 1] for i in range(n)]))
        logits = model(x[:, :-1])
        out[name] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).item()
    model.train()
    return out


# ---- output -----------------------------------------------------------------------------------
def write_safetensors(path, tensors, metadata):
    """safetensors: u64 header length, JSON header (dtype, shape, data_offsets), raw little-endian data."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, t in tensors:
        b = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def save_checkpoint(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.run, exist_ok=True)
    log_path = os.path.join(a.run, "log.txt")

    def log(line):
        line = f"[{time.strftime('%H:%M:%S')}] {line}"
        print(line, flush=True)
        with open(log_path, "a") as f:
            f.write(line + "\n")

    with open(os.path.join(a.data, "config.json")) as f:
        cfg = json.load(f)
    data = Data(a.data)
    if data.meta["vocabSize"] != cfg["vocab_size"]:
        sys.exit(f"config.json vocab_size {cfg['vocab_size']} differs from the data's {data.meta['vocabSize']}")
    model = Gpt2(cfg)
    decay = [p for n, p in model.w.items() if n.endswith("weight") and p.dim() == 2]
    no_decay = [p for n, p in model.w.items() if not (n.endswith("weight") and p.dim() == 2)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    ckpt_path = os.path.join(a.run, "checkpoint.pt")
    step, elapsed, history, evals = 0, 0.0, [], []
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, elapsed, history, evals = ck["step"], ck["elapsed"], ck["history"], ck["evals"]
        log(f"resumed at step {step} ({elapsed / 60:.1f} min trained so far)")
    else:
        model.init(a.seed)
    n_params = sum(p.numel() for p in model.parameters())
    tokens_per_step = a.batch * a.seq
    log(f"GPT-2 L {model.L}, C {model.C}, {model.NH} heads, V {model.V}, P {model.P}: {n_params} parameters; "
        f"{a.steps} steps of {a.batch} x {a.seq} tokens, lr {a.lr}, {torch.get_num_threads()} threads")

    stop = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    def checkpoint():
        save_checkpoint(ckpt_path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                                    "elapsed": elapsed, "history": history, "evals": evals, "args": vars(a)})

    run_start = time.time()
    last_ckpt = time.time()
    window_t, window_tokens, window_loss = time.time(), 0, []
    model.train()
    while step < a.steps and not stop["now"]:
        t_step = time.time()
        x, y = data.batch(a.seed, step, a.batch, a.seq)
        lr = lr_at(step, a)
        for g in opt.param_groups:
            g["lr"] = lr
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, model.V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        step += 1
        elapsed += time.time() - t_step
        history.append(round(loss.item(), 4))
        window_tokens += tokens_per_step
        window_loss.append(loss.item())
        if step % 10 == 0:
            now = time.time()
            log(f"step {step}/{a.steps} loss {np.mean(window_loss):.4f} lr {lr:.2e} {window_tokens / (now - window_t):.0f} tok/s")
            window_t, window_tokens, window_loss = now, 0, []
        if step % a.eval_every == 0 or step == a.steps:
            t_eval = time.time()
            held = held_out_loss(model, data, a.seq, a.eval_windows)
            evals.append({"step": step, "tokens": step * tokens_per_step, "loss": held, "mean": float(np.mean(list(held.values())))})
            log(f"held-out at step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in held.items()) + f" (mean {evals[-1]['mean']:.4f})")
            elapsed += time.time() - t_eval
        if time.time() - last_ckpt > a.checkpoint_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
        if a.max_minutes and time.time() - run_start > a.max_minutes * 60:
            log(f"--max-minutes {a.max_minutes} reached")
            break
    checkpoint()
    if step < a.steps:
        log(f"stopped at step {step}/{a.steps}; run again to continue")
        return

    # ---- the base model in Hugging Face layout ----
    os.makedirs(a.out, exist_ok=True)
    tensors = [("transformer." + n, model.p(n)) for n in model.names]
    write_safetensors(os.path.join(a.out, "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(a.data, "tokenizer.json")) as src, open(os.path.join(a.out, "tokenizer.json"), "w") as dst:
        dst.write(src.read())
    chunk = max(1, len(history) // 200)
    summary = {
        "script": "scripts/demo/pretrain.py",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "parameters": n_params,
        "settings": {k: v for k, v in vars(a).items() if k not in ("data", "run", "out")},
        "tokensPerStep": tokens_per_step,
        "tokensSeen": a.steps * tokens_per_step,
        "seconds": round(elapsed, 1),
        "trainLoss": {"first": history[0], "last100Mean": float(np.mean(history[-100:])),
                      "curve": [{"step": i + chunk, "loss": round(float(np.mean(history[i:i + chunk])), 4)} for i in range(0, len(history), chunk)]},
        "heldOut": evals,
        "sampling": {d["id"]: d["weight"] for d in data.meta["distributions"]},
    }
    with open(os.path.join(a.out, "pretrain.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    log(f"wrote {a.out}: {n_params} parameters, {elapsed / 60:.1f} min, held-out mean {evals[-1]['mean']:.4f}")


if __name__ == "__main__":
    main()
