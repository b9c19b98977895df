/**
 * Random-weight checkpoints with the shapes and config.json fields of models people fine-tune and
 * merge, full depth or with fewer layers, plus perturbed "fine-tunes" of them: for the scale test
 * (src/cli/scale.test.ts), `npm run bench:scale` and `make-fixtures.ts --real`. Files are written
 * tensor by tensor (one tensor in memory), in save_pretrained's layout, with the tokenizer.json
 * the caller gives (the fixtures' 300-token byte-level BPE: its ids are valid in every vocabulary).
 *
 * Weights are uniform in ±√3·std (std 0.02 for matrices and embeddings, norms around 1): not a
 * trained model, but every kernel, byte and buffer is the real model's size. A fine-tune adds an
 * independent uniform perturbation of `spread`·std to every parameter.
 */
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { expectedTensors, parseConfig, safetensorsLayout, storedName, type DType } from '../src/engine/index.ts';

/** One real model's architecture, as its published config.json states it. */
export interface RealShape {
  /** Hugging Face model_type. */
  modelType: 'qwen2' | 'llama';
  architecture: string;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  tied: boolean;
  positions: number;
  ropeTheta: number;
  normEps: number;
  /** Parameters at full depth (approximate, for messages). */
  params: string;
  /** Fields of the real config the engine does not take yet, left out here. */
  omitted?: string;
}

/**
 * Shapes of published configs (hidden size, depth, heads/kv heads, head dim, MLP width,
 * vocabulary, tied head, context, RoPE base, norm epsilon).
 */
export const REAL_SHAPES: Readonly<Record<string, RealShape>> = {
  'qwen2.5-0.5b': { modelType: 'qwen2', architecture: 'Qwen2ForCausalLM', hidden: 896, layers: 24, heads: 14, kvHeads: 2, headDim: 64, intermediate: 4864, vocab: 151_936, tied: true, positions: 32_768, ropeTheta: 1_000_000, normEps: 1e-6, params: '494M' },
  'qwen2.5-1.5b': { modelType: 'qwen2', architecture: 'Qwen2ForCausalLM', hidden: 1536, layers: 28, heads: 12, kvHeads: 2, headDim: 128, intermediate: 8960, vocab: 151_936, tied: true, positions: 32_768, ropeTheta: 1_000_000, normEps: 1e-6, params: '1.54B' },
  'smollm2-135m': { modelType: 'llama', architecture: 'LlamaForCausalLM', hidden: 576, layers: 30, heads: 9, kvHeads: 3, headDim: 64, intermediate: 1536, vocab: 49_152, tied: true, positions: 8192, ropeTheta: 100_000, normEps: 1e-5, params: '135M' },
  'smollm2-360m': { modelType: 'llama', architecture: 'LlamaForCausalLM', hidden: 960, layers: 32, heads: 15, kvHeads: 5, headDim: 64, intermediate: 2560, vocab: 49_152, tied: true, positions: 8192, ropeTheta: 100_000, normEps: 1e-5, params: '362M' },
  'llama-3.2-1b': {
    modelType: 'llama', architecture: 'LlamaForCausalLM', hidden: 2048, layers: 16, heads: 32, kvHeads: 8, headDim: 64, intermediate: 8192, vocab: 128_256, tied: true, positions: 131_072, ropeTheta: 500_000, normEps: 1e-5, params: '1.24B',
    omitted: "rope_scaling (llama3, factor 32): refused by the engine's config reader for now; it changes no shape or byte",
  },
};

/** The config.json of `shape` at `layers` depth, stored as `dtype`. */
export function realConfig(shape: RealShape, layers: number, dtype: DType): Record<string, unknown> {
  const common = {
    architectures: [shape.architecture],
    attention_dropout: 0.0,
    bos_token_id: 0,
    eos_token_id: 0,
    hidden_act: 'silu',
    hidden_size: shape.hidden,
    initializer_range: 0.02,
    intermediate_size: shape.intermediate,
    max_position_embeddings: shape.positions,
    model_type: shape.modelType,
    num_attention_heads: shape.heads,
    num_hidden_layers: layers,
    num_key_value_heads: shape.kvHeads,
    rms_norm_eps: shape.normEps,
    rope_scaling: null,
    rope_theta: shape.ropeTheta,
    tie_word_embeddings: shape.tied,
    torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16',
    use_cache: true,
    vocab_size: shape.vocab,
  };
  if (shape.modelType === 'qwen2') return { ...common, max_window_layers: layers, sliding_window: shape.positions, use_sliding_window: false };
  return { ...common, attention_bias: false, head_dim: shape.headDim, mlp_bias: false, pretraining_tp: 1 };
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h || 1;
}

/**
 * A tensor's stored bytes: base values (mean + uniform ±√3·std) plus, for a fine-tune, its own
 * perturbation. Uniforms come from two xorshift32 streams seeded per (checkpoint, tensor name),
 * written out inline: a 151,936 × 896 embedding is 136 M elements per checkpoint.
 */
function tensorBytes(name: string, n: number, dtype: DType, std: number, mean: number, finetune: number | undefined, spread: number): Uint8Array {
  let xb = fnv1a(`base:${name}`);
  let xd = fnv1a(finetune === undefined ? 'none' : `ft${finetune}:${name}`);
  const a = (Math.sqrt(3) * std * 2) / 4294967296;
  const d = finetune === undefined ? 0 : (Math.sqrt(3) * std * spread * 2) / 4294967296;
  const offset = mean - Math.sqrt(3) * std - (finetune === undefined ? 0 : Math.sqrt(3) * std * spread);
  const f32 = new Float32Array(dtype === 'F32' ? n : Math.min(n, 1 << 16));
  const out16 = dtype === 'F32' ? undefined : new Uint16Array(n);
  if (dtype !== 'F32' && dtype !== 'BF16') throw new Error(`realistic checkpoints are written as F32 or BF16, not ${dtype}`);
  const u32 = new Uint32Array(f32.buffer);
  for (let start = 0; start < n; start += f32.length) {
    const m = Math.min(f32.length, n - start);
    for (let i = 0; i < m; i++) {
      xb ^= xb << 13;
      xb ^= xb >>> 17;
      xb ^= xb << 5;
      xd ^= xd << 13;
      xd ^= xd >>> 17;
      xd ^= xd << 5;
      f32[i] = offset + (xb >>> 0) * a + (xd >>> 0) * d;
    }
    if (out16) {
      // Round to nearest even into BF16.
      for (let i = 0; i < m; i++) {
        const b = u32[i]!;
        out16[start + i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
      }
    }
  }
  return out16 ? new Uint8Array(out16.buffer) : new Uint8Array(f32.buffer);
}

export interface RealisticOptions {
  /** Decoder layers (default the model's own depth). */
  layers?: number;
  dtype?: DType;
  /** Fine-tunes next to the base: `${name}-ft-${i}`. */
  finetunes?: number;
  /** Fine-tune perturbation relative to each tensor's std (default 0.1). */
  spread?: number;
  /** tokenizer.json text written beside each checkpoint. */
  tokenizer: string;
}

/** Writes `dir/base` and `dir/ft-1` … `dir/ft-N`; returns their folders. */
export function writeRealistic(dir: string, shapeName: string, o: RealisticOptions): { base: string; finetunes: string[]; bytes: number } {
  const shape = REAL_SHAPES[shapeName];
  if (!shape) throw new Error(`unknown shape '${shapeName}' (known: ${Object.keys(REAL_SHAPES).join(', ')})`);
  const layers = o.layers ?? shape.layers;
  const dtype = o.dtype ?? 'BF16';
  const config = realConfig(shape, layers, dtype);
  const spec = parseConfig(config);
  const tensors = expectedTensors(spec)
    .filter((t) => t.kind === 'param' && !t.optional)
    .map((t) => ({ name: storedName(spec.family, t.name), dtype, shape: [...t.shape], role: t.role ?? '' }));
  const layout = safetensorsLayout(tensors, { format: 'pt' });
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const folders: string[] = [];
  let bytes = 0;
  for (let k = 0; k <= (o.finetunes ?? 0); k++) {
    const folder = join(dir, k === 0 ? 'base' : `ft-${k}`);
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    writeFileSync(join(folder, 'tokenizer.json'), o.tokenizer);
    const fd = openSync(join(folder, 'model.safetensors'), 'w');
    try {
      writeSync(fd, layout.header);
      for (const entry of layout.offsets) {
        const t = byName.get(entry.name)!;
        const n = t.shape.reduce((a, b) => a * b, 1);
        const norm = t.role.startsWith('norm');
        const data = tensorBytes(t.name, n, dtype, norm ? 0.05 : 0.02, norm && !t.role.endsWith('.bias') ? 1 : 0, k === 0 ? undefined : k, o.spread ?? 0.1);
        writeSync(fd, data);
      }
    } finally {
      closeSync(fd);
    }
    bytes += layout.totalSize;
    folders.push(folder);
  }
  return { base: folders[0]!, finetunes: folders.slice(1), bytes };
}
