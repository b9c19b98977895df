/**
 * Writes the tiny Hugging Face-layout checkpoints in e2e/fixtures/ (run: `npx tsx scripts/make-fixtures.ts`).
 *
 * Deterministic: a seeded PRNG (mulberry32), normals from the Irwin-Hall sum of 12 uniforms (only
 * +, -, * on IEEE doubles, so every JS engine gives the same bits), one seed per tensor derived
 * from the fixture and tensor name. Files follow transformers' save_pretrained layout exactly
 * (names, shapes, index.json, sorted-key config.json) so an independent PyTorch reference can
 * load them with from_pretrained.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeFromF32, expectedTensors, mulberry32, parseConfig, storedName, writeSafetensors, type DType, type WeightRole } from '../src/engine/index.ts';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'e2e', 'fixtures');

// ---------------------------------------------------------------------------------------------
// Randomness

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** `n` samples of N(mean, std^2) seeded by (seed, name). */
function normals(seed: number, name: string, n: number, std: number, mean = 0): Float64Array {
  const rand = mulberry32(fnv1a(`${seed}:${name}`));
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = -6;
    for (let k = 0; k < 12; k++) s += rand();
    out[i] = mean + std * s;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tokenizer: GPT-2 style byte-level BPE trained on a little English text

const TRAINING_TEXT = `The quick brown fox jumps over the lazy dog. The dog sleeps in the sun, and the fox runs
into the green wood. In the morning the farmer walks to the field with his two horses; in the
evening he comes home, eats his bread and tells the children a story about the old mill by the
river. There is a little house on the hill where the wind is strong and the nights are long.
She said that the weather would change, and the rain came at noon. We think it is the best
of times and the worst of times, and then the bells ring again in the town. They were there
when the ship came in, and they saw the sea and the stars and the light on the water.`;

const NUM_MERGES = 43; // 256 byte symbols + 43 merges + <|endoftext|> = 300 tokens
const EOT = '<|endoftext|>';

/** GPT-2's reversible byte -> printable character map; returns the 256 symbols in vocabulary order. */
function byteSymbols(): { order: number[]; char: string[] } {
  const order: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) order.push(b);
  for (let b = 0xa1; b <= 0xac; b++) order.push(b);
  for (let b = 0xae; b <= 0xff; b++) order.push(b);
  const char: string[] = new Array<string>(256);
  for (const b of order) char[b] = String.fromCodePoint(b);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (char[b] === undefined) {
      char[b] = String.fromCodePoint(256 + extra++);
      order.push(b);
    }
  }
  return { order, char };
}

function buildTokenizer(): unknown {
  const { order, char } = byteSymbols();
  const vocab = new Map<string, number>();
  for (const b of order) vocab.set(char[b]!, vocab.size);
  // GPT-2's pre-tokenizer pattern (the ByteLevel pre-tokenizer with use_regex applies the same).
  const pattern = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
  const counts = new Map<string, number>();
  for (const m of TRAINING_TEXT.replace(/\n/g, ' ').matchAll(pattern)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  const words = [...counts].map(([w, n]) => ({ symbols: [...new TextEncoder().encode(w)].map((b) => char[b]!), n }));
  const merges: string[] = [];
  while (merges.length < NUM_MERGES) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.symbols.length; i++) {
        const key = `${w.symbols[i]} ${w.symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + w.n);
      }
    }
    // Most frequent pair; ties broken by the pair text so the result never depends on Map order.
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, n] of pairs) {
      if (n > bestCount || (n === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = n;
      }
    }
    if (!best) throw new Error('training text too short for the number of merges');
    const [a, b] = best.split(' ') as [string, string];
    merges.push(best);
    vocab.set(a + b, vocab.size);
    for (const w of words) {
      const next: string[] = [];
      for (let i = 0; i < w.symbols.length; i++) {
        if (i + 1 < w.symbols.length && w.symbols[i] === a && w.symbols[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(w.symbols[i]!);
      }
      w.symbols = next;
    }
  }
  const eotId = vocab.size;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eotId, content: EOT, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
}

const VOCAB = 256 + NUM_MERGES + 1;
const EOT_ID = VOCAB - 1;

// ---------------------------------------------------------------------------------------------
// Tensors

interface Tensor {
  name: string;
  shape: number[];
  values: Float64Array;
  kind: 'param' | 'buffer';
  role?: WeightRole;
}

/** N(mean, std²) initialisation of a role; roles not listed are not written. */
type Init = Partial<Record<WeightRole, { std: number; mean?: number }>>;

const NORMS: Init = {
  norm1: { std: 0.05, mean: 1 },
  'norm1.bias': { std: 0.02 },
  norm2: { std: 0.05, mean: 1 },
  'norm2.bias': { std: 0.02 },
  norm_f: { std: 0.05, mean: 1 },
  'norm_f.bias': { std: 0.02 },
};
const GPT2_INIT: Init = {
  ...NORMS,
  embed: { std: 0.1 },
  pos_embed: { std: 0.05 },
  'attn.qkv': { std: 0.08 },
  'attn.qkv.bias': { std: 0.02 },
  'attn.o': { std: 0.08 },
  'attn.o.bias': { std: 0.02 },
  'mlp.up': { std: 0.08 },
  'mlp.up.bias': { std: 0.02 },
  'mlp.down': { std: 0.06 },
  'mlp.down.bias': { std: 0.02 },
};
const LLAMA_INIT: Init = {
  ...NORMS,
  embed: { std: 0.1 },
  'attn.q': { std: 0.1 },
  'attn.q.bias': { std: 0.05 },
  'attn.k': { std: 0.1 },
  'attn.k.bias': { std: 0.05 },
  'attn.v': { std: 0.1 },
  'attn.v.bias': { std: 0.05 },
  'attn.o': { std: 0.08 },
  'mlp.gate': { std: 0.1 },
  'mlp.up': { std: 0.1 },
  'mlp.down': { std: 0.08 },
  head: { std: 0.1 },
};
const PHI3_INIT: Init = {
  ...NORMS,
  embed: { std: 0.1 },
  'attn.qkv': { std: 0.1 },
  'attn.o': { std: 0.08 },
  'mlp.gate_up': { std: 0.1 },
  'mlp.down': { std: 0.08 },
  head: { std: 0.1 },
};

/**
 * A checkpoint's tensors in the architecture table's order and save_pretrained's names: every
 * required param, the head when untied, and with `buffers` GPT-2's causal-mask buffers as older
 * transformers versions saved them (float32: the (1, 1, P, P) mask and the scalar masked_bias).
 */
function tableTensors(seed: number, config: Record<string, unknown>, init: Init, buffers = false): Tensor[] {
  const spec = parseConfig(config);
  const P = spec.maxPositions;
  const out: Tensor[] = [];
  for (const t of expectedTensors(spec)) {
    const name = storedName(spec.family, t.name);
    if (t.kind === 'buffer') {
      if (!buffers) continue;
      const values = t.shape.length === 0 ? Float64Array.of(-10000) : new Float64Array(P * P).map((_, k) => (k % P <= Math.floor(k / P) ? 1 : 0));
      out.push({ name, shape: t.shape, values, kind: 'buffer' });
      continue;
    }
    const how = init[t.role!];
    if (t.optional || !how) continue;
    out.push({ name, shape: t.shape, values: normals(seed, name, t.shape.reduce((a, b) => a * b, 1), how.std, how.mean), kind: 'param', role: t.role! });
  }
  return out;
}

/** A fine-tune: base + small seeded perturbation of every parameter (buffers untouched). */
function fineTune(base: Tensor[], seed: number, std: number): Tensor[] {
  return base.map((t) => {
    if (t.kind !== 'param') return t;
    const delta = normals(seed, `delta:${t.name}`, t.values.length, std);
    return { ...t, values: t.values.map((v, i) => v + delta[i]!) };
  });
}

// ---------------------------------------------------------------------------------------------
// Writing

/** JSON as Python's json.dumps(obj, indent=2, sort_keys=True) + newline lays it out (transformers' style). */
function sortedJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])]));
    return v;
  };
  return `${JSON.stringify(sort(value), null, 2)}\n`;
}

function encoded(t: Tensor, dtype: DType): { name: string; dtype: DType; shape: number[]; data: Uint8Array } {
  return { name: t.name, dtype, shape: t.shape, data: encodeFromF32(Float32Array.from(t.values), dtype) };
}

function writeCheckpoint(dir: string, config: Record<string, unknown>, tensors: Tensor[], dtype: DType, tokenizer: string, shards: number): void {
  const path = isAbsolute(dir) ? dir : join(ROOT, dir);
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'config.json'), sortedJson(config));
  writeFileSync(join(path, 'tokenizer.json'), tokenizer);
  const metadata = { format: 'pt' };
  if (shards === 1) {
    writeFileSync(join(path, 'model.safetensors'), writeSafetensors(tensors.map((t) => encoded(t, dtype)), metadata));
    return;
  }
  // Consecutive groups of tensors in model order, as save_pretrained's size-based sharding gives.
  const perShard = Math.ceil(tensors.length / shards);
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const group = tensors.slice(s * perShard, (s + 1) * perShard).map((t) => encoded(t, dtype));
    for (const t of group) {
      weightMap[t.name] = file;
      totalSize += t.data.byteLength;
    }
    writeFileSync(join(path, file), writeSafetensors(group, metadata));
  }
  writeFileSync(join(path, 'model.safetensors.index.json'), sortedJson({ metadata: { total_size: totalSize }, weight_map: weightMap }));
}

function gpt2ConfigFor(g: { V: number; C: number; L: number; P: number }, heads: number): Record<string, unknown> {
  return {
    activation_function: 'gelu_new',
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: 0.0,
    bos_token_id: EOT_ID,
    embd_pdrop: 0.0,
    eos_token_id: EOT_ID,
    initializer_range: 0.02,
    layer_norm_epsilon: 1e-5,
    model_type: 'gpt2',
    n_embd: g.C,
    n_head: heads,
    n_inner: null,
    n_layer: g.L,
    n_positions: g.P,
    reorder_and_upcast_attn: false,
    resid_pdrop: 0.0,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: g.V,
  };
}

function llamaConfigFor(l: { V: number; C: number; L: number; NH: number; NKV: number; HS: number; FF: number }, positions: number): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: EOT_ID,
    eos_token_id: EOT_ID,
    head_dim: l.HS,
    hidden_act: 'silu',
    hidden_size: l.C,
    initializer_range: 0.02,
    intermediate_size: l.FF,
    max_position_embeddings: positions,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: l.NH,
    num_hidden_layers: l.L,
    num_key_value_heads: l.NKV,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000.0,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    use_cache: true,
    vocab_size: l.V,
  };
}

/**
 * The layers' matrices scaled by `f`: the fixtures' std was chosen for width 32, wider layers want
 * std ∝ 1/√width (activations and attention scores O(1)). Embeddings and the head keep theirs, so
 * the logits spread over several units and the predicted distribution is far from uniform.
 */
function scaled(tensors: Tensor[], f: number): Tensor[] {
  const keep = new Set<WeightRole | undefined>(['embed', 'pos_embed', 'head']);
  return tensors.map((t) => (t.kind === 'param' && t.shape.length >= 2 && !keep.has(t.role) ? { ...t, values: t.values.map((v) => v * f) } : t));
}

/**
 * `--large DIR`: realistic shapes for checks on a real GPU (not committed; about 1 GB): GPT-2
 * small (124M, F32, 1024 positions, 50257-token head) and a Llama with GQA 16:4, head 64, RoPE,
 * 2048 positions (110M, BF16, 2 shards), both with this file's 300-token tokenizer.
 */
function largeFixtures(dir: string, tokenizer: string): void {
  const g = { V: 50257, C: 768, L: 12, P: 1024, FF: 3072 };
  const gpt2Config = gpt2ConfigFor(g, 12);
  writeCheckpoint(join(dir, 'gpt2-small'), gpt2Config, scaled(tableTensors(7001, gpt2Config, GPT2_INIT, true), Math.sqrt(32 / g.C)), 'F32', tokenizer, 1);
  const l = { V: 32000, C: 1024, L: 4, NH: 16, NKV: 4, HS: 64, FF: 2816 };
  const llamaConfig = llamaConfigFor(l, 2048);
  writeCheckpoint(join(dir, 'llama-gqa'), llamaConfig, scaled(tableTensors(7002, llamaConfig, LLAMA_INIT), Math.sqrt(32 / l.C)), 'BF16', tokenizer, 2);
  console.log(`wrote large fixtures to ${dir}`);
}

function main(): void {
  const tokenizer = `${JSON.stringify(buildTokenizer(), null, 2)}\n`;
  if (process.argv[2] === '--large') {
    if (!process.argv[3]) throw new Error('usage: make-fixtures.ts --large DIR');
    largeFixtures(resolve(process.argv[3]), tokenizer);
    return;
  }
  mkdirSync(ROOT, { recursive: true });

  const g = { V: VOCAB, C: 32, L: 2, P: 64, FF: 128 };
  const gpt2Config = gpt2ConfigFor(g, 4);
  const gpt2 = tableTensors(1001, gpt2Config, GPT2_INIT, true);
  writeCheckpoint('tiny-gpt2', gpt2Config, gpt2, 'F32', tokenizer, 1);
  writeCheckpoint('tiny-gpt2-ft-a', gpt2Config, fineTune(gpt2, 2001, 0.01), 'F32', tokenizer, 1);
  writeCheckpoint('tiny-gpt2-ft-b', gpt2Config, fineTune(gpt2, 2002, 0.01), 'F32', tokenizer, 1);
  writeCheckpoint('tiny-gpt2-ft-c', gpt2Config, fineTune(gpt2, 2003, 0.01), 'F32', tokenizer, 1);

  const l = { V: VOCAB, C: 32, L: 2, NH: 4, NKV: 2, HS: 8, FF: 64 };
  const llamaConfig = llamaConfigFor(l, 64);
  const llama = tableTensors(3001, llamaConfig, LLAMA_INIT);
  writeCheckpoint('tiny-llama', llamaConfig, llama, 'BF16', tokenizer, 2);
  writeCheckpoint('tiny-llama-ft-a', llamaConfig, fineTune(llama, 4001, 0.01), 'BF16', tokenizer, 2);
  writeCheckpoint('tiny-llama-ft-b', llamaConfig, fineTune(llama, 4002, 0.01), 'BF16', tokenizer, 2);

  const qwenConfig = {
    architectures: ['Qwen2ForCausalLM'],
    attention_dropout: 0.0,
    bos_token_id: EOT_ID,
    eos_token_id: EOT_ID,
    hidden_act: 'silu',
    hidden_size: l.C,
    initializer_range: 0.02,
    intermediate_size: l.FF,
    max_position_embeddings: 64,
    max_window_layers: l.L,
    model_type: 'qwen2',
    num_attention_heads: l.NH,
    num_hidden_layers: l.L,
    num_key_value_heads: l.NKV,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 1000000.0,
    sliding_window: null,
    tie_word_embeddings: true,
    torch_dtype: 'float16',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: l.V,
  };
  writeCheckpoint('tiny-qwen2', qwenConfig, tableTensors(5001, qwenConfig, LLAMA_INIT), 'F16', tokenizer, 1);

  // Phi-3-mini-4k-instruct's config fields at the tiny shape; its sliding window 2047 of 4096
  // positions becomes 31 of 64, shorter than the reference's 48-token context.
  const phi3Config = {
    architectures: ['Phi3ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: EOT_ID,
    embd_pdrop: 0.0,
    eos_token_id: EOT_ID,
    hidden_act: 'silu',
    hidden_size: l.C,
    initializer_range: 0.02,
    intermediate_size: l.FF,
    max_position_embeddings: 64,
    model_type: 'phi3',
    num_attention_heads: l.NH,
    num_hidden_layers: l.L,
    num_key_value_heads: l.NKV,
    original_max_position_embeddings: 64,
    pad_token_id: EOT_ID,
    resid_pdrop: 0.0,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000.0,
    sliding_window: 31,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    use_cache: true,
    vocab_size: l.V,
  };
  const phi3 = tableTensors(6001, phi3Config, PHI3_INIT);
  writeCheckpoint('tiny-phi3', phi3Config, phi3, 'BF16', tokenizer, 1);
  writeCheckpoint('tiny-phi3-ft-a', phi3Config, fineTune(phi3, 6101, 0.01), 'BF16', tokenizer, 1);
  writeCheckpoint('tiny-phi3-ft-b', phi3Config, fineTune(phi3, 6102, 0.01), 'BF16', tokenizer, 1);
  console.log(`wrote fixtures to ${ROOT}`);
}

main();
