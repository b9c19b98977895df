#!/usr/bin/python3
"""Independent reference for DEM Studio's whole-model numbers (perplexity, task scores).

Written from the Hugging Face model definitions and the perplexity definition in
src/engine/model/perplexity.ts (windows of `context` tokens, no special tokens), sharing no code with the
TypeScript engine: its own safetensors reader, its own byte-level BPE tokenizer (GPT-2 scheme, from
tokenizer.json's vocab/merges) and a PyTorch float64 forward pass for GPT-2 and Llama-family
(llama/mistral/qwen2) checkpoints. Run with Debian's python3-torch:

    /usr/bin/python3 scripts/reference_ppl.py --model DIR --text FILE [--context N] [--base DIR --ft DIR:W ...]

Prints JSON {model | base, ft, lambda; text, tokens, predicted, context, nll_sum, nll_mean, ppl,
ids_head}. With --base, the model is the
task-arithmetic merge  base + lambda * sum_i w_i (ft_i - base)  computed in float64 and rounded to
the base's dtype, as `dem ppl --base` does.

With --task FILE (repeatable) instead of --text it scores task files (JSON Lines) as `dem eval`
defines them, written here from lm-evaluation-harness's conventions: multiple choice
{"context", "choices", "gold"} by the log-likelihood of each choice (trailing whitespace of the
context moved to the choice; continuation = ids(context + choice)[len(ids(context)):]; the
sequence cut from the left to context + 1 tokens), acc, acc_norm (log-likelihood per character)
with ties to the lower index; generative {"prompt", "answer", "stop"} by greedy decoding (a full
forward pass per token) until a stop string, EOS or --max-tokens, exact match after strip().
Prints {inputs; context, max_tokens, tasks: [{file, name, n, acc, acc_norm, stderr, items: [{loglik,
pred, gold}]} | {file, name, n, exact_match, stderr, items: [{output, gold}]}]}, stderr =
sqrt(p (1 - p) / (n - 1)).
"""
import argparse
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch

DTYPES = {"F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (None, 2),
          "I64": (np.int64, 8), "I32": (np.int32, 4), "U8": (np.uint8, 1), "BOOL": (np.bool_, 1)}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[base + b: base + e]
        dt = info["dtype"]
        if dt == "BF16":
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u16.view(np.float32).astype(np.float64)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(DTYPES[dt][0]).newbyteorder("<")).astype(np.float64)
        out[name] = (dt, arr.reshape(info["shape"]))
    return out


def load_checkpoint(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        for s in shards:
            tensors.update(read_safetensors(os.path.join(folder, s)))
    else:
        tensors.update(read_safetensors(os.path.join(folder, "model.safetensors")))
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    return config, tensors


def round_to(dt, x):
    """Round float64 values to a stored dtype (round to nearest even), back to float64."""
    if dt == "F32":
        return x.astype(np.float32).astype(np.float64)
    if dt == "F16":
        return x.astype(np.float16).astype(np.float64)
    if dt == "BF16":
        f = x.astype(np.float32)
        u = f.view(np.uint32).astype(np.uint64)
        rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
        nan = np.isnan(f)
        out = rounded.astype(np.uint32).view(np.float32).astype(np.float64)
        out[nan] = np.nan
        return out
    return x


# ---- tokenizer: GPT-2 byte-level BPE --------------------------------------------------------
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


# GPT-2's pre-tokenisation pattern, written for Python's `re` (no \p classes): letters and digits
# are approximated by [^\W\d_] and \d, exact for the ASCII text the fixtures use. The original's
# "other" class [^\s\p{L}\p{N}] includes '_', which Python's \w counts as a word character, so it
# is spelled (?:[^\s\w]|_) here (with [^\s\w] alone, findall silently dropped every underscore).
PRETOKEN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


class ByteBPE:
    def __init__(self, tokenizer_json):
        model = tokenizer_json["model"]
        self.vocab = model["vocab"]
        merges = model["merges"]
        pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
        self.ranks = {p: i for i, p in enumerate(pairs)}
        self.byte_map = bytes_to_unicode()
        # Longest first so a token that contains another wins.
        self.added = {t["content"]: t["id"] for t in sorted(tokenizer_json.get("added_tokens") or [], key=lambda t: -len(t["content"]))}

    def bpe(self, word):
        parts = list(word)
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            a, b = parts[best[1]], parts[best[1] + 1]
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def decode(self, ids):
        # Byte-level: token strings back to bytes, added tokens as their text; invalid UTF-8
        # becomes U+FFFD (as the Rust tokenizers' from_utf8_lossy does).
        if not hasattr(self, "inverse"):
            self.inverse = {i: t for t, i in self.vocab.items()}
            self.inverse_added = {i: t for t, i in self.added.items()}
            self.unbyte = {c: b for b, c in self.byte_map.items()}
        out, buf = [], bytearray()
        for i in ids:
            if i in self.inverse_added:
                out.append(buf.decode("utf-8", errors="replace"))
                buf = bytearray()
                out.append(self.inverse_added[i])
            else:
                buf.extend(self.unbyte[c] for c in self.inverse[i])
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    def encode(self, text):
        # Added tokens (e.g. <|endoftext|>) are matched in the raw text first, as `tokenizers` does;
        # the text between them goes through pre-tokenisation and BPE.
        ids = []
        parts = re.split("(" + "|".join(map(re.escape, self.added)) + ")", text) if self.added else [text]
        for part in parts:
            if part in self.added:
                ids.append(self.added[part])
                continue
            pieces = PRETOKEN.findall(part)
            # findall skips what no alternative matches: refuse rather than drop text silently.
            if sum(map(len, pieces)) != len(part):
                raise SystemExit("pre-tokenisation dropped characters: the pattern is incomplete")
            for piece in pieces:
                word = "".join(self.byte_map[b] for b in piece.encode("utf-8"))
                ids.extend(self.vocab[t] for t in self.bpe(word))
        return ids


# ---- forward passes (float64) -----------------------------------------------------------------
def T(x):
    return torch.from_numpy(np.ascontiguousarray(x)).to(torch.float64)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def attention(q, k, v, window=None):
    # q (NH, T, HS), k/v (NH, T, HS) after GQA expansion. With a sliding window W, query i also
    # loses keys j <= i - W (transformers' sliding_window_overlay: kv_idx > q_idx - W).
    t = q.shape[1]
    scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[2])
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    if window is not None:
        mask = mask | torch.tril(torch.ones(t, t, dtype=torch.bool), diagonal=-window)
    scores = scores.masked_fill(mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def gpt2_logits(cfg, w, ids):
    g = lambda n: T(w[n] if n in w else w["transformer." + n])
    C, NH = cfg["n_embd"], cfg["n_head"]
    HS = C // NH
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    t = len(ids)
    x = g("wte.weight")[ids] + g("wpe.weight")[:t]
    ln = lambda x, p: torch.nn.functional.layer_norm(x, (C,), g(p + ".weight"), g(p + ".bias"), eps)
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        h = ln(x, p + "ln_1")
        qkv = h @ g(p + "attn.c_attn.weight") + g(p + "attn.c_attn.bias")  # Conv1D: (in, out)
        q, k, v = qkv.split(C, dim=1)
        heads = lambda z: z.view(t, NH, HS).transpose(0, 1)
        a = attention(heads(q), heads(k), heads(v)).transpose(0, 1).reshape(t, C)
        x = x + a @ g(p + "attn.c_proj.weight") + g(p + "attn.c_proj.bias")
        h = ln(x, p + "ln_2")
        h = gelu_new(h @ g(p + "mlp.c_fc.weight") + g(p + "mlp.c_fc.bias"))
        x = x + h @ g(p + "mlp.c_proj.weight") + g(p + "mlp.c_proj.bias")
    x = ln(x, "ln_f")
    head = T(w["lm_head.weight"]) if "lm_head.weight" in w else g("wte.weight")
    return x @ head.T


def llama_logits(cfg, w, ids):
    g = lambda n: T(w[n])
    C, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    NKV = cfg.get("num_key_value_heads", NH)
    HS = cfg.get("head_dim") or C // NH
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta", 10000.0)
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    t = len(ids)
    rms = lambda x, n: x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * g(n)
    inv = 1.0 / theta ** (torch.arange(0, HS, 2, dtype=torch.float64) / HS)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    rot = lambda z: torch.cat([-z[..., HS // 2:], z[..., :HS // 2]], -1)
    rope = lambda z: z * cos + rot(z) * sin
    lin = lambda x, n, bias: x @ g(n + ".weight").T + (g(n + ".bias") if bias else 0)
    x = g("model.embed_tokens.weight")[ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, p + "input_layernorm.weight")
        q = lin(h, p + "self_attn.q_proj", qkv_bias).view(t, NH, HS).transpose(0, 1)
        k = lin(h, p + "self_attn.k_proj", qkv_bias).view(t, NKV, HS).transpose(0, 1)
        v = lin(h, p + "self_attn.v_proj", qkv_bias).view(t, NKV, HS).transpose(0, 1)
        q, k = rope(q), rope(k)
        rep = NH // NKV
        k, v = k.repeat_interleave(rep, 0), v.repeat_interleave(rep, 0)
        a = attention(q, k, v).transpose(0, 1).reshape(t, NH * HS)
        x = x + lin(a, p + "self_attn.o_proj", False)
        h = rms(x, p + "post_attention_layernorm.weight")
        gate = lin(h, p + "mlp.gate_proj", cfg.get("mlp_bias", False))
        up = lin(h, p + "mlp.up_proj", cfg.get("mlp_bias", False))
        x = x + lin(torch.nn.functional.silu(gate) * up, p + "mlp.down_proj", cfg.get("mlp_bias", False))
    x = rms(x, "model.norm.weight")
    head = g("lm_head.weight") if "lm_head.weight" in w else g("model.embed_tokens.weight")
    return x @ head.T


def phi3_logits(cfg, w, ids):
    # Phi3ForCausalLM: Llama's block over a fused qkv_proj (rows q, k, v) and gate_up_proj
    # (rows gate, up; up * silu(gate)), no biases, RMSNorm eps default 1e-5, a sliding window.
    if cfg.get("rope_scaling") is not None:
        raise SystemExit("phi3 rope_scaling is not implemented here")
    if cfg.get("partial_rotary_factor", 1.0) != 1.0:
        raise SystemExit("phi3 partial_rotary_factor != 1 is not implemented here")
    g = lambda n: T(w[n])
    C, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    NKV = cfg.get("num_key_value_heads") or NH
    HS = cfg.get("head_dim") or C // NH
    FF = cfg["intermediate_size"]
    eps = cfg.get("rms_norm_eps", 1e-5)
    theta = cfg.get("rope_theta", 10000.0)
    window = cfg.get("sliding_window")
    t = len(ids)
    rms = lambda x, n: g(n) * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
    inv_freq = 1.0 / theta ** (torch.arange(0, HS, 2, dtype=torch.int64).to(torch.float64) / HS)
    freqs = torch.arange(t, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    half = lambda z: torch.cat((-z[..., HS // 2:], z[..., : HS // 2]), dim=-1)
    x = g("model.embed_tokens.weight")[ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, p + "input_layernorm.weight")
        qkv = h @ g(p + "self_attn.qkv_proj.weight").T
        qd, kvd = NH * HS, NKV * HS
        q = qkv[:, :qd].view(t, NH, HS).transpose(0, 1)
        k = qkv[:, qd:qd + kvd].view(t, NKV, HS).transpose(0, 1)
        v = qkv[:, qd + kvd:].view(t, NKV, HS).transpose(0, 1)
        q, k = q * cos + half(q) * sin, k * cos + half(k) * sin
        k, v = k.repeat_interleave(NH // NKV, 0), v.repeat_interleave(NH // NKV, 0)
        a = attention(q, k, v, window).transpose(0, 1).reshape(t, qd)
        x = x + a @ g(p + "self_attn.o_proj.weight").T
        h = rms(x, p + "post_attention_layernorm.weight")
        gate, up = (h @ g(p + "mlp.gate_up_proj.weight").T).chunk(2, dim=-1)
        assert gate.shape[-1] == FF
        x = x + (up * torch.nn.functional.silu(gate)) @ g(p + "mlp.down_proj.weight").T
    x = rms(x, "model.norm.weight")
    head = g("lm_head.weight") if "lm_head.weight" in w else g("model.embed_tokens.weight")
    return x @ head.T


def logits_fn(cfg):
    mt = cfg["model_type"]
    if mt == "gpt2":
        return gpt2_logits
    if mt in ("llama", "mistral", "qwen2"):
        return llama_logits
    if mt == "phi3":
        return phi3_logits
    raise SystemExit(f"unsupported model_type {mt}")


def perplexity(cfg, w, ids, context):
    f = logits_fn(cfg)
    nll_sum, predicted = 0.0, 0
    for s in range(0, len(ids), context):
        win = ids[s:s + context]
        if len(win) < 2:
            continue
        logp = torch.log_softmax(f(cfg, w, win), dim=-1)
        tgt = torch.tensor(win[1:])
        nll_sum += float(-logp[:-1].gather(1, tgt[:, None]).sum())
        predicted += len(win) - 1
    return nll_sum, predicted


def leading_ids(folder, cfg):
    """The BOS rule: [bos_token_id] when tokenizer_config.json asks for it (add_bos_token), else none."""
    path = os.path.join(folder, "tokenizer_config.json")
    if os.path.exists(path):
        with open(path) as f:
            if json.load(f).get("add_bos_token") is True:
                return [cfg["bos_token_id"]]
    return []


def mean_stderr(flags):
    n = len(flags)
    p = sum(flags) / n
    return p, (math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else None)


def first_max(values):
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def read_task(path):
    items = []
    with open(path, encoding="utf-8") as f:
        for line in f.read().split("\n"):
            if line.strip():
                items.append(json.loads(line))
    return items


def score_choices(cfg, w, tok, lead, items, context):
    f = logits_fn(cfg)
    out = []
    for item in items:
        logliks = []
        for choice in item["choices"]:
            ctx, cont = item["context"], choice
            n = len(ctx) - len(ctx.rstrip())
            if n:
                ctx, cont = ctx[:-n], ctx[-n:] + cont
            ctx_ids = lead + tok.encode(ctx)
            cont_ids = (lead + tok.encode(ctx + cont))[len(ctx_ids):]
            seq = (ctx_ids + cont_ids)[-(context + 1):]
            logp = torch.log_softmax(f(cfg, w, seq[:-1]), dim=-1)
            # Token seq[k] is predicted by row k - 1.
            logliks.append(float(sum(logp[k - 1, seq[k]] for k in range(len(seq) - len(cont_ids), len(seq)))))
        norm = [l / len(c) for l, c in zip(logliks, item["choices"])]
        out.append({"loglik": logliks, "pred": first_max(logliks), "pred_norm": first_max(norm), "gold": item["gold"]})
    acc, stderr = mean_stderr([i["pred"] == i["gold"] for i in out])
    acc_norm, _ = mean_stderr([i["pred_norm"] == i["gold"] for i in out])
    return {"n": len(out), "acc": acc, "acc_norm": acc_norm, "stderr": stderr, "items": out}


def score_generative(cfg, w, tok, lead, items, context, max_tokens):
    f = logits_fn(cfg)
    eos = cfg.get("eos_token_id")
    out = []
    for item in items:
        stops = item.get("stop", ["\n"])
        seq = (lead + tok.encode(item["prompt"]))[-(context - max_tokens):]
        new = []
        for _ in range(max_tokens):
            nxt = int(torch.argmax(f(cfg, w, seq + new)[-1]))
            if nxt == eos:
                break
            new.append(nxt)
            if any(s in tok.decode(new) for s in stops):
                break
        text = tok.decode(new)
        cut = min([text.find(s) for s in stops if s in text], default=len(text))
        output = text[:cut]
        out.append({"output": output, "gold": item["answer"], "correct": output.strip() == item["answer"].strip()})
    em, stderr = mean_stderr([i["correct"] for i in out])
    return {"n": len(out), "exact_match": em, "stderr": stderr, "items": out}


def merged_weights(base_dir, fts, lam):
    cfg, base = load_checkpoint(base_dir)
    models = [(load_checkpoint(d)[1], wt) for d, wt in fts]
    out = {}
    for name, (dt, b) in base.items():
        if dt not in ("F32", "F16", "BF16"):
            out[name] = b
            continue
        acc = np.zeros_like(b)
        for m, wt in models:
            acc += wt * (m[name][1] - b)
        out[name] = round_to(dt, b + lam * acc)
    return cfg, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--base")
    ap.add_argument("--ft", action="append", default=[], help="DIR:WEIGHT (with --base)")
    ap.add_argument("--lambda", dest="lam", type=float, default=1.0)
    ap.add_argument("--text")
    ap.add_argument("--task", action="append", default=[], help="a task file (JSON Lines); repeat for several")
    ap.add_argument("--max-tokens", dest="max_tokens", type=int, default=32)
    ap.add_argument("--context", type=int)
    args = ap.parse_args()
    if bool(args.text) == bool(args.task):
        raise SystemExit("give --text FILE or --task FILE ...")
    if args.base:
        fts = [(s.rsplit(":", 1)[0], float(s.rsplit(":", 1)[1])) for s in args.ft]
        cfg, w = merged_weights(args.base, fts, args.lam)
        tok_dir = args.base
    else:
        cfg, raw = load_checkpoint(args.model)
        w = {k: v for k, (_, v) in raw.items()}
        tok_dir = args.model
    w = {k: (v[1] if isinstance(v, tuple) else v) for k, v in w.items()}
    with open(os.path.join(tok_dir, "tokenizer.json")) as f:
        tok = ByteBPE(json.load(f))
    max_pos = cfg.get("n_positions") or cfg.get("max_position_embeddings") or 1024
    context = args.context or min(max_pos, 1024)
    inputs = {"base": args.base, "ft": args.ft, "lambda": args.lam} if args.base else {"model": args.model}
    if args.task:
        lead = leading_ids(tok_dir, cfg)
        tasks = []
        for path in args.task:
            items = read_task(path)
            name = os.path.splitext(os.path.basename(path))[0]
            if "choices" in items[0]:
                r = score_choices(cfg, w, tok, lead, items, context)
            else:
                r = score_generative(cfg, w, tok, lead, items, context, args.max_tokens)
            tasks.append({"file": path, "name": name, **r})
        json.dump({**inputs, "context": context, "max_tokens": args.max_tokens, "tasks": tasks}, sys.stdout, indent=1, ensure_ascii=False)
        print()
        return
    with open(args.text, encoding="utf-8") as f:
        ids = tok.encode(f.read())
    nll_sum, predicted = perplexity(cfg, w, ids, context)
    # The inputs go into the output so a test can rerun exactly this case with `dem ppl`.
    json.dump({**inputs, "text": args.text, "tokens": len(ids), "predicted": predicted, "context": context, "nll_sum": nll_sum,
               "nll_mean": nll_sum / predicted, "ppl": math.exp(nll_sum / predicted), "ids_head": ids[:16]},
              sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
