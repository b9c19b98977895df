#!/usr/bin/python3
"""Independent reference for DEM Studio's whole-model numbers (perplexity, task scores).

Written from the Hugging Face model definitions and the perplexity definition in
src/engine/model/perplexity.ts (windows of `context` tokens, no special tokens; the tokenizer's BOS
before each window as context when it adds one), sharing no code with the TypeScript engine: its own
safetensors reader, its own tokenizers (byte-level BPE in the GPT-2 scheme or with a Split regex as
Llama 3 and Qwen ship it; SentencePiece-style BPE with byte fallback as Llama 2, Mistral and Gemma
ship it, from tokenizer.json's vocab/merges) and a PyTorch float64 forward pass per family: GPT-2,
Llama (llama/mistral/qwen2, RoPE scaling linear/dynamic/yarn/llama3), Phi-3, Qwen3, Gemma 2 and
OLMo 2, each from its transformers modeling code. Run with Debian's python3-torch:

    /usr/bin/python3 scripts/reference_ppl.py --model DIR --text FILE [--context N] [--base DIR --ft DIR:W ...]

Prints JSON {model | base, ft, lambda; text, tokens, predicted, context, nll_sum, nll_mean, ppl,
ids_head} (and bos, the id put before each window, when the tokenizer adds one). With --base, the model is the
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


def python_pattern(regex):
    """A tokenizer.json Split regex (Oniguruma, \\p classes) for Python's `re`, exact on ASCII text:
    letters [^\\W\\d_], numbers \\d, and the negated classes that mix them spelled as alternatives."""
    out = (regex.replace(r"[^\r\n\p{L}\p{N}]", r"(?:[^\r\n\w]|_)")
           .replace(r"[^\s\p{L}\p{N}]", r"(?:[^\s\w]|_)")
           .replace(r"\p{L}", r"[^\W\d_]")
           .replace(r"\p{N}", r"\d"))
    if r"\p{" in out:
        raise SystemExit(f"Split regex {regex!r}: a Unicode class this script does not translate")
    return re.compile(out)


def byte_level_pattern(tokenizer_json):
    """GPT-2's pattern for ByteLevel(use_regex), or the Split regex before a ByteLevel(use_regex=false)."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre["pretokenizers"] if pre.get("type") == "Sequence" else [pre]
    for step in steps:
        if step.get("type") == "Split":
            if step.get("behavior") != "Isolated" or step.get("invert"):
                raise SystemExit("only Split(Regex, Isolated) before ByteLevel is implemented here")
            return python_pattern(step["pattern"]["Regex"])
        if step.get("type") == "ByteLevel" and step.get("use_regex", True):
            return PRETOKEN
    raise SystemExit(f"pre_tokenizer {pre!r} is not implemented here")


class ByteBPE:
    def __init__(self, tokenizer_json):
        model = tokenizer_json["model"]
        self.vocab = model["vocab"]
        merges = model["merges"]
        pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
        self.ranks = {p: i for i, p in enumerate(pairs)}
        self.byte_map = bytes_to_unicode()
        self.pattern = byte_level_pattern(tokenizer_json)
        # ignore_merges (Llama 3): a pre-token that is a whole vocabulary entry is taken as is.
        self.ignore_merges = bool(model.get("ignore_merges"))
        # Longest first so a token that contains another wins.
        self.added = {t["content"]: t["id"] for t in sorted(tokenizer_json.get("added_tokens") or [], key=lambda t: -len(t["content"]))}

    def token_id(self, token):
        return self.added.get(token, self.vocab.get(token))

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
            pieces = self.pattern.findall(part)
            # findall skips what no alternative matches: refuse rather than drop text silently.
            if sum(map(len, pieces)) != len(part):
                raise SystemExit("pre-tokenisation dropped characters: the pattern is incomplete")
            for piece in pieces:
                word = "".join(self.byte_map[b] for b in piece.encode("utf-8"))
                if self.ignore_merges and word in self.vocab:
                    ids.append(self.vocab[word])
                    continue
                ids.extend(self.vocab[t] for t in self.bpe(word))
        return ids


class SentencePieceBPE(ByteBPE):
    """BPE over characters as SentencePiece models converted to tokenizer.json run it: normalizers
    Replace(' ', '▁') / Prepend('▁') (Llama 2, Mistral, Gemma), or a Metaspace pre-tokenizer
    (prepend_scheme always/first; split at '▁' word starts unless split is false); a symbol the
    vocabulary lacks becomes its UTF-8 bytes <0xNN> (byte_fallback), else the unk token."""

    def __init__(self, tokenizer_json):
        model = tokenizer_json["model"]
        self.vocab = model["vocab"]
        pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        self.ranks = {p: i for i, p in enumerate(pairs)}
        self.byte_fallback = bool(model.get("byte_fallback"))
        self.unk = model.get("unk_token")
        self.ignore_merges = bool(model.get("ignore_merges"))
        self.normalizer = tokenizer_json.get("normalizer")
        self.pre = tokenizer_json.get("pre_tokenizer")
        self.added = {t["content"]: t["id"] for t in sorted(tokenizer_json.get("added_tokens") or [], key=lambda t: -len(t["content"]))}

    def normalize(self, text, n):
        if n is None:
            return text
        kind = n["type"]
        if kind == "Sequence":
            for step in n["normalizers"]:
                text = self.normalize(text, step)
            return text
        if kind == "Replace" and "String" in n["pattern"]:
            return text.replace(n["pattern"]["String"], n["content"])
        if kind == "Prepend":
            return n["prepend"] + text if text else text
        raise SystemExit(f"normalizer {kind} is not implemented here")

    def pre_tokenize(self, pieces, p, first):
        if p is None:
            return pieces
        kind = p["type"]
        if kind == "Sequence":
            for step in p["pretokenizers"]:
                pieces = self.pre_tokenize(pieces, step, first)
            return pieces
        out = []
        for piece in pieces:
            if kind == "Metaspace":
                rep = p.get("replacement", "▁")
                piece = piece.replace(" ", rep)
                scheme = p.get("prepend_scheme", "always")
                if (scheme == "always" or (scheme == "first" and first)) and not piece.startswith(rep):
                    piece = rep + piece
                out.extend(re.split("(?=" + re.escape(rep) + ")", piece) if p.get("split", True) else [piece])
            elif kind == "Split" and "String" in p["pattern"] and p.get("behavior") == "MergedWithPrevious" and not p.get("invert"):
                out.extend(re.split("(?<=" + re.escape(p["pattern"]["String"]) + ")", piece))
            else:
                raise SystemExit(f"pre_tokenizer {kind} is not implemented here")
        return [x for x in out if x]

    def encode(self, text):
        ids = []
        parts = re.split("(" + "|".join(map(re.escape, self.added)) + ")", text) if self.added else [text]
        offset = 0
        for part in parts:
            start, offset = offset, offset + len(part)
            if part in self.added:
                ids.append(self.added[part])
                continue
            if not part:
                continue
            for piece in self.pre_tokenize([self.normalize(part, self.normalizer)], self.pre, start == 0):
                symbols = [piece] if self.ignore_merges and piece in self.vocab else self.bpe(piece)
                for t in symbols:
                    if t in self.vocab:
                        ids.append(self.vocab[t])
                    elif self.byte_fallback and all(f"<0x{b:02X}>" in self.vocab for b in t.encode("utf-8")):
                        ids.extend(self.vocab[f"<0x{b:02X}>"] for b in t.encode("utf-8"))
                    elif self.unk is not None:
                        ids.append(self.vocab[self.unk])
                    else:
                        raise SystemExit(f"no token for {t!r} and no unk token")
        return ids


def load_tokenizer(folder):
    """The folder's tokenizer and the BOS transformers' tokenizer would put first (None: none):
    tokenizer_config.json's add_bos_token (with its bos_token) when present, else a
    TemplateProcessing post-processor whose single template starts with a special token."""
    with open(os.path.join(folder, "tokenizer.json")) as f:
        tj = json.load(f)
    config_path = os.path.join(folder, "tokenizer_config.json")
    tc = {}
    if os.path.exists(config_path):
        with open(config_path) as f:
            tc = json.load(f)
    n, pre = tj.get("normalizer") or {}, tj.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre])
    sentencepiece = n.get("type") in ("Replace", "Prepend", "Sequence") or any(s.get("type") == "Metaspace" for s in steps)
    tok = SentencePieceBPE(tj) if sentencepiece else ByteBPE(tj)
    bos = None
    if tc.get("add_bos_token") is not None:
        if tc["add_bos_token"]:
            t = tc["bos_token"]
            bos = tok.token_id(t["content"] if isinstance(t, dict) else t)
    else:
        pp = tj.get("post_processor") or {}
        for proc in (pp.get("processors") or []) if pp.get("type") == "Sequence" else [pp]:
            if proc.get("type") == "TemplateProcessing":
                first = proc["single"][0]
                if "SpecialToken" in first:
                    name = first["SpecialToken"]["id"]
                    bos = proc["special_tokens"][name]["ids"][0]
                break
    return tok, bos


# ---- forward passes (float64) -----------------------------------------------------------------
def T(x):
    return torch.from_numpy(np.ascontiguousarray(x)).to(torch.float64)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def attention(q, k, v, window=None, scaling=None, softcap=None):
    # q (NH, T, HS), k/v (NH, T, HS) after GQA expansion. With a sliding window W, query i also
    # loses keys j <= i - W (transformers' sliding_window_overlay: kv_idx > q_idx - W). Scores are
    # scaled by head_dim^-0.5 unless given (Gemma 2: query_pre_attn_scalar^-0.5) and, with a
    # softcap (Gemma 2's eager attention), tanh(scores / cap) * cap before the mask.
    t = q.shape[1]
    if scaling is None:
        scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[2])
    else:
        scores = (q @ k.transpose(1, 2)) * scaling
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
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


def rope_parameters(cfg):
    """(rope_type, parameters) from rope_scaling (legacy, with the top-level rope_theta) or
    transformers 5's rope_parameters (rope_theta inside); rope_scaling wins when both are set."""
    params = dict(cfg.get("rope_scaling") or cfg.get("rope_parameters") or {})
    if any(isinstance(v, dict) for v in params.values()):
        raise SystemExit("per-layer-type rope_parameters are not implemented here")
    params.setdefault("rope_theta", cfg.get("rope_theta", 10000.0))
    return params.get("rope_type", params.get("type", "default")), params


def rope_inv_freq(cfg, HS, seq_len):
    """Inverse frequencies (HS/2) and the cos/sin attention factor, as modeling_rope_utils computes
    them for rope_type default / linear / dynamic / llama3 / yarn (float64 here)."""
    kind, p = rope_parameters(cfg)
    base = p["rope_theta"]
    max_pos = cfg["max_position_embeddings"]
    # Llama 3 and yarn: a top-level original_max_position_embeddings (Phi-3's place) wins.
    original = cfg.get("original_max_position_embeddings") or p.get("original_max_position_embeddings") or max_pos
    if kind == "dynamic":
        # NTK by the current length: plain up to max_position_embeddings.
        length = max(seq_len, max_pos)
        base = base * ((p["factor"] * length / max_pos) - (p["factor"] - 1)) ** (HS / (HS - 2))
    inv = 1.0 / base ** (torch.arange(0, HS, 2, dtype=torch.float64) / HS)
    if kind in ("default", "dynamic"):
        return inv, 1.0
    if kind == "linear":
        return inv / p["factor"], 1.0
    if kind == "llama3":
        factor, low, high = p["factor"], p["low_freq_factor"], p["high_freq_factor"]
        wavelen = 2 * math.pi / inv
        out = torch.where(wavelen > original / low, inv / factor, inv)
        smooth = (original / wavelen - low) / (high - low)
        medium = ~(wavelen < original / high) & ~(wavelen > original / low)
        return torch.where(medium, (1 - smooth) * out / factor + smooth * out, out), 1.0
    if kind == "yarn":
        factor = p.get("factor") or max_pos / original
        mscale = lambda s, m=1.0: 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0
        attention_factor = p.get("attention_factor")
        if attention_factor is None:
            if p.get("mscale") and p.get("mscale_all_dim"):
                attention_factor = mscale(factor, p["mscale"]) / mscale(factor, p["mscale_all_dim"])
            else:
                attention_factor = mscale(factor)
        beta_fast, beta_slow = p.get("beta_fast") or 32, p.get("beta_slow") or 1
        dim_at = lambda rotations: HS * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))
        low, high = dim_at(beta_fast), dim_at(beta_slow)
        if p.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, HS - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(HS // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
        extrapolation = 1 - ramp
        return (inv / factor) * (1 - extrapolation) + inv * extrapolation, attention_factor
    raise SystemExit(f"rope_type {kind!r} is not implemented here")


def rope_cos_sin(cfg, HS, t):
    """cos, sin (t, HS) in the rotate-half layout (frequencies repeated), times the attention factor."""
    inv, factor = rope_inv_freq(cfg, HS, t)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    if factor != 1.0:
        cos, sin = cos * factor, sin * factor
    return cos, sin


def llama_logits(cfg, w, ids):
    g = lambda n: T(w[n])
    C, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    NKV = cfg.get("num_key_value_heads", NH)
    HS = cfg.get("head_dim") or C // NH
    eps = cfg.get("rms_norm_eps", 1e-6)
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    t = len(ids)
    rms = lambda x, n: x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * g(n)
    cos, sin = rope_cos_sin(cfg, HS, t)
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


def rotate(z, cos, sin):
    half = z.shape[-1] // 2
    return z * cos + torch.cat((-z[..., half:], z[..., :half]), dim=-1) * sin


def qwen3_logits(cfg, w, ids):
    # Qwen3ForCausalLM: Llama's block with an explicit head_dim (128 by default) and an RMSNorm
    # over each head of q and k (q_norm, k_norm: weight (head_dim)) before RoPE; attention_bias
    # biases q, k, v and o.
    if cfg.get("use_sliding_window"):
        raise SystemExit("qwen3 use_sliding_window is not implemented here")
    g = lambda n: T(w[n])
    C, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    NKV = cfg.get("num_key_value_heads") or NH
    HS = cfg.get("head_dim") or 128
    eps = cfg.get("rms_norm_eps", 1e-6)
    bias = cfg.get("attention_bias", False)
    t = len(ids)
    rms = lambda x, n: g(n) * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
    lin = lambda x, n, b=False: x @ g(n + ".weight").T + (g(n + ".bias") if b else 0)
    cos, sin = rope_cos_sin(cfg, HS, t)
    x = g("model.embed_tokens.weight")[ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, p + "input_layernorm.weight")
        q = rms(lin(h, p + "self_attn.q_proj", bias).view(t, NH, HS), p + "self_attn.q_norm.weight").transpose(0, 1)
        k = rms(lin(h, p + "self_attn.k_proj", bias).view(t, NKV, HS), p + "self_attn.k_norm.weight").transpose(0, 1)
        v = lin(h, p + "self_attn.v_proj", bias).view(t, NKV, HS).transpose(0, 1)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k, v = k.repeat_interleave(NH // NKV, 0), v.repeat_interleave(NH // NKV, 0)
        a = attention(q, k, v).transpose(0, 1).reshape(t, NH * HS)
        x = x + lin(a, p + "self_attn.o_proj", bias)
        h = rms(x, p + "post_attention_layernorm.weight")
        x = x + lin(torch.nn.functional.silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms(x, "model.norm.weight")
    head = g("lm_head.weight") if "lm_head.weight" in w else g("model.embed_tokens.weight")
    return x @ head.T


def gemma2_logits(cfg, w, ids):
    # Gemma2ForCausalLM: embeddings times sqrt(hidden_size); Gemma2RMSNorm scales by (1 + weight);
    # per layer input_layernorm -> attention -> post_attention_layernorm -> residual, then
    # pre_feedforward_layernorm -> GeGLU (gelu_pytorch_tanh) -> post_feedforward_layernorm ->
    # residual; scores scaled by query_pre_attn_scalar^-0.5 and soft-capped (attn_logit_softcapping);
    # layer_types (default: sliding on even layers) with sliding_window; final logits soft-capped.
    if cfg.get("use_bidirectional_attention"):
        raise SystemExit("gemma2 bidirectional attention is not implemented here")
    g = lambda n: T(w[n])
    C, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    NKV = cfg.get("num_key_value_heads") or NH
    HS = cfg.get("head_dim") or 256
    eps = cfg.get("rms_norm_eps", 1e-6)
    bias = cfg.get("attention_bias", False)
    L = cfg["num_hidden_layers"]
    scaling = cfg.get("query_pre_attn_scalar", 256) ** -0.5
    attn_cap = cfg.get("attn_logit_softcapping", 50.0)
    final_cap = cfg.get("final_logit_softcapping", 30.0)
    layer_types = cfg.get("layer_types") or ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(L)]
    window = cfg.get("sliding_window", 4096)
    act = cfg.get("hidden_activation", "gelu_pytorch_tanh")
    if act not in ("gelu_pytorch_tanh", "gelu_new"):
        raise SystemExit(f"gemma2 hidden_activation {act} is not implemented here")
    t = len(ids)
    rms = lambda x, n: (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)) * (1.0 + g(n))
    lin = lambda x, n, b=False: x @ g(n + ".weight").T + (g(n + ".bias") if b else 0)
    cos, sin = rope_cos_sin(cfg, HS, t)
    x = g("model.embed_tokens.weight")[ids] * (C ** 0.5)
    for i in range(L):
        p = f"model.layers.{i}."
        residual = x
        h = rms(x, p + "input_layernorm.weight")
        q = lin(h, p + "self_attn.q_proj", bias).view(t, NH, HS).transpose(0, 1)
        k = lin(h, p + "self_attn.k_proj", bias).view(t, NKV, HS).transpose(0, 1)
        v = lin(h, p + "self_attn.v_proj", bias).view(t, NKV, HS).transpose(0, 1)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k, v = k.repeat_interleave(NH // NKV, 0), v.repeat_interleave(NH // NKV, 0)
        sliding = window if layer_types[i] == "sliding_attention" else None
        a = attention(q, k, v, sliding, scaling, attn_cap).transpose(0, 1).reshape(t, NH * HS)
        x = residual + rms(lin(a, p + "self_attn.o_proj", bias), p + "post_attention_layernorm.weight")
        residual = x
        h = rms(x, p + "pre_feedforward_layernorm.weight")
        gate = torch.nn.functional.gelu(lin(h, p + "mlp.gate_proj"), approximate="tanh")
        h = lin(gate * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
        x = residual + rms(h, p + "post_feedforward_layernorm.weight")
    x = rms(x, "model.norm.weight")
    head = g("lm_head.weight") if "lm_head.weight" in w else g("model.embed_tokens.weight")
    logits = x @ head.T
    if final_cap is not None:
        logits = torch.tanh(logits / final_cap) * final_cap
    return logits


def olmo2_logits(cfg, w, ids):
    # Olmo2ForCausalLM: no input norms; attention -> post_attention_layernorm -> residual, MLP ->
    # post_feedforward_layernorm -> residual; q_norm / k_norm are RMSNorms over the whole q
    # (NH*HS) and k (NKV*HS) projections, before the split into heads and RoPE.
    g = lambda n: T(w[n])
    C, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    NKV = cfg.get("num_key_value_heads") or NH
    HS = cfg.get("head_dim") or C // NH
    eps = cfg.get("rms_norm_eps", 1e-5)
    bias = cfg.get("attention_bias", False)
    t = len(ids)
    rms = lambda x, n: g(n) * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
    lin = lambda x, n, b=False: x @ g(n + ".weight").T + (g(n + ".bias") if b else 0)
    cos, sin = rope_cos_sin(cfg, HS, t)
    x = g("model.embed_tokens.weight")[ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        q = rms(lin(x, p + "self_attn.q_proj", bias), p + "self_attn.q_norm.weight").view(t, NH, HS).transpose(0, 1)
        k = rms(lin(x, p + "self_attn.k_proj", bias), p + "self_attn.k_norm.weight").view(t, NKV, HS).transpose(0, 1)
        v = lin(x, p + "self_attn.v_proj", bias).view(t, NKV, HS).transpose(0, 1)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k, v = k.repeat_interleave(NH // NKV, 0), v.repeat_interleave(NH // NKV, 0)
        a = attention(q, k, v).transpose(0, 1).reshape(t, NH * HS)
        x = x + rms(lin(a, p + "self_attn.o_proj", bias), p + "post_attention_layernorm.weight")
        h = lin(torch.nn.functional.silu(lin(x, p + "mlp.gate_proj")) * lin(x, p + "mlp.up_proj"), p + "mlp.down_proj")
        x = x + rms(h, p + "post_feedforward_layernorm.weight")
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
    if mt == "qwen3":
        return qwen3_logits
    if mt == "gemma2":
        return gemma2_logits
    if mt == "olmo2":
        return olmo2_logits
    raise SystemExit(f"unsupported model_type {mt}")


def perplexity(cfg, w, ids, context, bos=None):
    # With a BOS, each window [BOS] + window predicts all of its tokens, the BOS only as context.
    f = logits_fn(cfg)
    nll_sum, predicted = 0.0, 0
    for s in range(0, len(ids), context):
        win = ids[s:s + context]
        if len(win) < 2:
            continue
        if bos is not None:
            win = [bos] + win
        logp = torch.log_softmax(f(cfg, w, win), dim=-1)
        tgt = torch.tensor(win[1:])
        nll_sum += float(-logp[:-1].gather(1, tgt[:, None]).sum())
        predicted += len(win) - 1
    return nll_sum, predicted


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
    tok, bos = load_tokenizer(tok_dir)
    max_pos = cfg.get("n_positions") or cfg.get("max_position_embeddings") or 1024
    inputs = {"base": args.base, "ft": args.ft, "lambda": args.lam} if args.base else {"model": args.model}
    if args.task:
        # Task contexts and prompts start with the same BOS the perplexity windows get.
        context = args.context or min(max_pos, 1024)
        lead = [] if bos is None else [bos]
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
    context = args.context or min(max_pos, 1024) - (bos is not None)
    nll_sum, predicted = perplexity(cfg, w, ids, context, bos)
    # The inputs go into the output so a test can rerun exactly this case with `dem ppl`.
    json.dump({**inputs, "text": args.text, "tokens": len(ids), "predicted": predicted, "context": context, "nll_sum": nll_sum,
               "nll_mean": nll_sum / predicted, "ppl": math.exp(nll_sum / predicted), "ids_head": ids[:16],
               **({} if bos is None else {"bos": bos})},
              sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
