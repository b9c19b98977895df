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

/** Splitting patterns of the byte-level tokenizers Llama 3 (tiktoken's cl100k style) and Qwen2/3 ship. */
const LLAMA3_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function addedToken(id: number, content: string, special = true): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special };
}

/**
 * The byte-level vocabulary and merges above as Llama 3 and Qwen ship theirs: a Split with the
 * family's regex then ByteLevel without its own regex, ignore_merges, and their special tokens
 * after the 299 learned ones (Llama 3: <|begin_of_text|> 299 through the post-processor's
 * template, as Llama 3 adds its BOS; Qwen: <|endoftext|> 299, no BOS).
 */
function byteLevelTokenizer(style: 'llama3' | 'qwen'): Record<string, unknown> {
  const base = buildTokenizer() as Record<string, unknown> & { model: Record<string, unknown> };
  const specials = style === 'llama3' ? ['<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>'] : ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
  const template = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: specials[0], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: specials[0], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: specials[0], type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [specials[0]!]: { id: specials[0], ids: [EOT_ID], tokens: [specials[0]] } },
  };
  return {
    ...base,
    added_tokens: specials.map((t, i) => addedToken(EOT_ID + i, t)),
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: style === 'llama3' ? LLAMA3_PATTERN : QWEN_PATTERN }, behavior: 'Isolated', invert: false }, byteLevel] },
    post_processor: style === 'llama3' ? { type: 'Sequence', processors: [{ ...byteLevel, trim_offsets: false }, template] } : { ...byteLevel, trim_offsets: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { ...base.model, ignore_merges: true },
  };
}

const SP_MERGES = 60;

/**
 * A SentencePiece-style BPE as Llama 2, Mistral and Gemma ship it in tokenizer.json: spaces as
 * '▁' (Llama 2 / Mistral: Prepend('▁') + Replace normalizers, the `legacy` form their files
 * have; Gemma: Replace alone, then a Split on ' ' that finds none), merges never across a '▁'
 * word start, the 256 <0xNN> byte tokens for every character the vocabulary lacks (byte_fallback),
 * the special tokens first (Llama 2: <unk> <s> </s>; Gemma: <pad> <eos> <bos> <unk> and the turn
 * markers), then the characters of the training paragraph and SP_MERGES merges learned from it.
 */
function sentencePieceTokenizer(style: 'llama2' | 'gemma'): { json: Record<string, unknown>; vocabSize: number; ids: Record<string, number> } {
  const specials = style === 'llama2' ? ['<unk>', '<s>', '</s>'] : ['<pad>', '<eos>', '<bos>', '<unk>', '<start_of_turn>', '<end_of_turn>'];
  const vocab = new Map<string, number>();
  for (const t of specials) vocab.set(t, vocab.size);
  for (let b = 0; b < 256; b++) vocab.set(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, vocab.size);
  const text = (style === 'llama2' ? '▁' : '') + TRAINING_TEXT.replace(/\n/g, ' ').replace(/ /g, '▁');
  const chars = [...new Set(text)].sort();
  for (const c of chars) vocab.set(c, vocab.size);
  const counts = new Map<string, number>();
  for (const w of text.split(/(?=▁)/)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const words = [...counts].map(([w, n]) => ({ symbols: [...w], n }));
  const merges: string[] = [];
  while (merges.length < SP_MERGES) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.symbols.length; i++) {
        const key = `${w.symbols[i]} ${w.symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + w.n);
      }
    }
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
  const ids = Object.fromEntries(specials.map((t) => [t, vocab.get(t)!]));
  const bos = style === 'llama2' ? '<s>' : '<bos>';
  const replace = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
  const decoders: unknown[] = [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }];
  if (style === 'llama2') decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((t) => addedToken(vocab.get(t)!, t)),
    normalizer: style === 'llama2' ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, replace] } : replace,
    pre_tokenizer: style === 'llama2' ? null : { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [bos]: { id: bos, ids: [vocab.get(bos)!], tokens: [bos] } },
    },
    decoder: { type: 'Sequence', decoders },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
  return { json, vocabSize: vocab.size, ids };
}

/** Short chat templates in each family's shape, carried through export untouched. */
const LLAMA3_CHAT = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
const GEMMA_CHAT = "{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";
const QWEN_CHAT = "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n";

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

// Sharper attention (larger q/k) where a fixture's point is how positions are encoded.
const LLAMA_SHARP_INIT: Init = { ...LLAMA_INIT, 'attn.q': { std: 0.3 }, 'attn.k': { std: 0.3 } };
const QWEN3_INIT: Init = { ...LLAMA_INIT, 'attn.q_norm': { std: 0.05, mean: 1 }, 'attn.k_norm': { std: 0.05, mean: 1 } };
const OLMO2_INIT: Init = { ...QWEN3_INIT, 'attn.post_norm': { std: 0.05, mean: 1 }, 'mlp.post_norm': { std: 0.05, mean: 1 } };
// Gemma stores its norm scales as w in (1 + w): near 0. Larger embeddings and q/k projections
// than the others' so the scaled-down soft caps bend scores and logits.
const GEMMA2_INIT: Init = {
  ...LLAMA_INIT,
  norm1: { std: 0.05 },
  'attn.post_norm': { std: 0.05 },
  norm2: { std: 0.05 },
  'mlp.post_norm': { std: 0.05 },
  norm_f: { std: 0.05 },
  embed: { std: 0.4 },
  'attn.q': { std: 0.25 },
  'attn.k': { std: 0.25 },
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

/** `extra`: more files beside the weights (tokenizer_config.json, chat_template.jinja), written as given. */
function writeCheckpoint(dir: string, config: Record<string, unknown>, tensors: Tensor[], dtype: DType, tokenizer: string, shards: number, extra: Record<string, string> = {}): void {
  const path = isAbsolute(dir) ? dir : join(ROOT, dir);
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'config.json'), sortedJson(config));
  writeFileSync(join(path, 'tokenizer.json'), tokenizer);
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(path, name), text);
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

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/**
 * The families people fine-tune today, each with its published config.json fields at the tiny
 * shape (V ≈ 300, C = 32, L = 2) and its tokenizer as it ships: Llama 3.2 (rope llama3, tied,
 * BOS from the post-processor), a Llama 2 long-context fine-tune (rope linear, SentencePiece
 * byte-fallback tokenizer with add_bos_token), a Llama with dynamic NTK RoPE (32 positions, so the
 * 48-token windows rescale it), Qwen2.5 with yarn, Qwen3, Gemma 2 and OLMo 2; the four newest
 * with two fine-tunes each for merges.
 */
function familyFixtures(gpt2Tokenizer: string): void {
  const l = { V: VOCAB + 2, C: 32, L: 2, NH: 4, NKV: 2, HS: 8, FF: 64 };

  // Llama-3.2-1B: rope_type llama3 (factor 32, low 1, high 4) over an original context of 8192
  // of 131072 positions, scaled to 16 of 64 here (so all bands act on 48-token windows); tied.
  const llama3Tokenizer = json(byteLevelTokenizer('llama3'));
  const llama3Config = {
    ...llamaConfigFor(l, 64),
    bos_token_id: EOT_ID,
    eos_token_id: EOT_ID + 1,
    rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 16, rope_type: 'llama3' },
    rope_theta: 500000.0,
    tie_word_embeddings: true,
  };
  const llama3Extra = {
    'tokenizer_config.json': json({
      bos_token: '<|begin_of_text|>', chat_template: LLAMA3_CHAT, clean_up_tokenization_spaces: true, eos_token: '<|eot_id|>',
      model_input_names: ['input_ids', 'attention_mask'], model_max_length: 131072, tokenizer_class: 'PreTrainedTokenizerFast',
    }),
  };
  const llama3 = tableTensors(8001, llama3Config, LLAMA_INIT);
  writeCheckpoint('tiny-llama3', llama3Config, llama3, 'BF16', llama3Tokenizer, 1, llama3Extra);
  writeCheckpoint('tiny-llama3-ft-a', llama3Config, fineTune(llama3, 8101, 0.01), 'BF16', llama3Tokenizer, 1, llama3Extra);
  writeCheckpoint('tiny-llama3-ft-b', llama3Config, fineTune(llama3, 8102, 0.01), 'BF16', llama3Tokenizer, 1, llama3Extra);

  // A Llama 2 fine-tune stretched 4x with linear RoPE (as Vicuna/LongChat-16k do), multi-head,
  // F16, the legacy `type` key, and Llama 2's tokenizer files.
  const sp = sentencePieceTokenizer('llama2');
  const llama2Config = {
    ...llamaConfigFor({ ...l, V: sp.vocabSize, NKV: 4 }, 64),
    bos_token_id: sp.ids['<s>'],
    eos_token_id: sp.ids['</s>'],
    pad_token_id: sp.ids['<unk>'],
    rope_scaling: { factor: 4.0, type: 'linear' },
    torch_dtype: 'float16',
  };
  delete (llama2Config as Record<string, unknown>).head_dim;
  const addedToken2 = (content: string): Record<string, unknown> => ({ __type: 'AddedToken', content, lstrip: false, normalized: false, rstrip: false, single_word: false });
  writeCheckpoint('tiny-llama2-linear', llama2Config, tableTensors(8201, llama2Config, LLAMA_INIT), 'F16', json(sp.json), 1, {
    'tokenizer_config.json': json({
      add_bos_token: true, add_eos_token: false, bos_token: addedToken2('<s>'), clean_up_tokenization_spaces: false, eos_token: addedToken2('</s>'),
      legacy: true, model_max_length: 16384, pad_token: null, padding_side: 'right', sp_model_kwargs: {}, tokenizer_class: 'LlamaTokenizer', unk_token: addedToken2('<unk>'),
    }),
  });

  // Dynamic NTK RoPE (factor 2) on a Llama with 32 positions: 48-token windows rescale the base.
  const dynamicConfig = { ...llamaConfigFor({ ...l, V: VOCAB }, 32), rope_scaling: { factor: 2.0, type: 'dynamic' }, torch_dtype: 'float32' };
  writeCheckpoint('tiny-llama-dynamic', dynamicConfig, tableTensors(8301, dynamicConfig, LLAMA_SHARP_INIT), 'F32', gpt2Tokenizer, 1);

  // Qwen2.5 with its long-context yarn setting (factor 4) over an original context of 16 of 64.
  const qwenTokenizer = json(byteLevelTokenizer('qwen'));
  const qwen2Config = {
    architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: EOT_ID, eos_token_id: EOT_ID, hidden_act: 'silu', hidden_size: l.C,
    initializer_range: 0.02, intermediate_size: l.FF, max_position_embeddings: 64, max_window_layers: l.L, model_type: 'qwen2', num_attention_heads: l.NH,
    num_hidden_layers: l.L, num_key_value_heads: l.NKV, rms_norm_eps: 1e-6, rope_scaling: { factor: 4.0, original_max_position_embeddings: 16, type: 'yarn' },
    rope_theta: 1000000.0, sliding_window: 64, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, use_sliding_window: false, vocab_size: l.V,
  };
  const qwenExtra = {
    'tokenizer_config.json': json({
      add_prefix_space: false, bos_token: null, clean_up_tokenization_spaces: false, eos_token: '<|im_end|>', errors: 'replace',
      model_max_length: 131072, pad_token: '<|endoftext|>', split_special_tokens: false, tokenizer_class: 'Qwen2Tokenizer', unk_token: null,
    }),
    // transformers ≥ 4.49 saves the chat template beside tokenizer_config.json.
    'chat_template.jinja': QWEN_CHAT,
  };
  writeCheckpoint('tiny-qwen2-yarn', qwen2Config, tableTensors(8401, qwen2Config, LLAMA_INIT), 'BF16', qwenTokenizer, 1, qwenExtra);

  // Qwen3-0.6B: explicit head_dim (16 here; NH·HS = 64 ≠ C = 32), q_norm / k_norm per head, tied.
  const qwen3Config = {
    architectures: ['Qwen3ForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: EOT_ID, eos_token_id: EOT_ID + 2, head_dim: 16,
    hidden_act: 'silu', hidden_size: l.C, initializer_range: 0.02, intermediate_size: l.FF, max_position_embeddings: 64, max_window_layers: l.L,
    model_type: 'qwen3', num_attention_heads: l.NH, num_hidden_layers: l.L, num_key_value_heads: l.NKV, rms_norm_eps: 1e-6, rope_scaling: null,
    rope_theta: 1000000, sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, use_sliding_window: false, vocab_size: l.V,
  };
  const qwen3 = tableTensors(8501, qwen3Config, QWEN3_INIT);
  writeCheckpoint('tiny-qwen3', qwen3Config, qwen3, 'BF16', qwenTokenizer, 1, qwenExtra);
  writeCheckpoint('tiny-qwen3-ft-a', qwen3Config, fineTune(qwen3, 8601, 0.01), 'BF16', qwenTokenizer, 1, qwenExtra);
  writeCheckpoint('tiny-qwen3-ft-b', qwen3Config, fineTune(qwen3, 8602, 0.01), 'BF16', qwenTokenizer, 1, qwenExtra);

  // Gemma-2-2b: head_dim 16 (256 there), query_pre_attn_scalar 24 (≠ head_dim, as Gemma 2 27B's
  // 144), a sliding window of 8 positions (4096 there) on every other layer from layer 0, well
  // inside the 48-token windows, and soft caps scaled down with the sizes (50 → 4, 30 → 6) so they bend these weights' scores
  // and logits; F32 as the published 2B; Gemma's tokenizer with add_bos_token.
  const gemmaSp = sentencePieceTokenizer('gemma');
  const gemmaConfig = {
    architectures: ['Gemma2ForCausalLM'], attention_bias: false, attention_dropout: 0.0, attn_logit_softcapping: 4.0, bos_token_id: gemmaSp.ids['<bos>'],
    cache_implementation: 'hybrid', eos_token_id: [gemmaSp.ids['<eos>'], gemmaSp.ids['<end_of_turn>']], final_logit_softcapping: 6.0, head_dim: 16,
    hidden_act: 'gelu_pytorch_tanh', hidden_activation: 'gelu_pytorch_tanh', hidden_size: l.C, initializer_range: 0.02, intermediate_size: l.FF,
    max_position_embeddings: 64, model_type: 'gemma2', num_attention_heads: l.NH, num_hidden_layers: l.L, num_key_value_heads: l.NKV,
    pad_token_id: gemmaSp.ids['<pad>'], query_pre_attn_scalar: 24, rms_norm_eps: 1e-6, rope_theta: 10000.0, sliding_window: 8, torch_dtype: 'float32',
    use_cache: true, vocab_size: gemmaSp.vocabSize,
  };
  const gemmaExtra = {
    'tokenizer_config.json': json({
      add_bos_token: true, add_eos_token: false, bos_token: '<bos>', chat_template: GEMMA_CHAT, clean_up_tokenization_spaces: false, eos_token: '<eos>',
      model_max_length: 8192, pad_token: '<pad>', sp_model_kwargs: {}, spaces_between_special_tokens: false,
      tokenizer_class: 'GemmaTokenizer', unk_token: '<unk>', use_default_system_prompt: false,
    }),
  };
  const gemma = tableTensors(8701, gemmaConfig, GEMMA2_INIT);
  writeCheckpoint('tiny-gemma2', gemmaConfig, gemma, 'F32', json(gemmaSp.json), 1, gemmaExtra);
  writeCheckpoint('tiny-gemma2-ft-a', gemmaConfig, fineTune(gemma, 8801, 0.01), 'F32', json(gemmaSp.json), 1, gemmaExtra);
  writeCheckpoint('tiny-gemma2-ft-b', gemmaConfig, fineTune(gemma, 8802, 0.01), 'F32', json(gemmaSp.json), 1, gemmaExtra);

  // OLMo-2-1B: multi-head, post-norms only, q/k norms over the whole projection, untied, F32,
  // rope_theta 5e5; a GPT-2-style byte-level tokenizer without BOS.
  const olmoConfig = {
    architectures: ['Olmo2ForCausalLM'], attention_bias: false, attention_dropout: 0.0, eos_token_id: EOT_ID, hidden_act: 'silu', hidden_size: l.C,
    initializer_range: 0.02, intermediate_size: l.FF, max_position_embeddings: 64, model_type: 'olmo2', num_attention_heads: l.NH, num_hidden_layers: l.L,
    num_key_value_heads: l.NH, pad_token_id: EOT_ID, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 500000, tie_word_embeddings: false,
    torch_dtype: 'float32', use_cache: true, vocab_size: VOCAB,
  };
  const olmo = tableTensors(8901, olmoConfig, OLMO2_INIT);
  writeCheckpoint('tiny-olmo2', olmoConfig, olmo, 'F32', gpt2Tokenizer, 1);
  writeCheckpoint('tiny-olmo2-ft-a', olmoConfig, fineTune(olmo, 9001, 0.01), 'F32', gpt2Tokenizer, 1);
  writeCheckpoint('tiny-olmo2-ft-b', olmoConfig, fineTune(olmo, 9002, 0.01), 'F32', gpt2Tokenizer, 1);
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

  familyFixtures(tokenizer);
  console.log(`wrote fixtures to ${ROOT}`);
}

main();
