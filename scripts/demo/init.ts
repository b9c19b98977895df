/**
 * Freshly initialised checkpoints in Hugging Face layout (config.json, model.safetensors,
 * tokenizer.json) for models the project trains itself: the demo's base model and the training
 * benchmark, with the tensor list of the architecture table. Initialisation follows GPT-2's
 * scheme (N(0, 0.02²), residual projections scaled by 1/sqrt(2L), norms 1, biases 0); the values
 * come from a seeded PRNG so a run is reproducible.
 */
import { encodeFromF32, forwardWeights, mulberry32, parseConfig, storedName, writeSafetensors } from '../../src/engine/index.ts';
import { BYTE_VOCAB, byteTokenizerJson } from './tokenizer.ts';

export interface Gpt2Shape {
  family: 'gpt2';
  /** Layers, width, heads, context. */
  L: number;
  C: number;
  NH: number;
  P: number;
  /** Vocabulary, end-of-text last (default: the byte-level tokenizer's 257). */
  V?: number;
}

export interface LlamaShape {
  family: 'llama';
  L: number;
  C: number;
  NH: number;
  NKV: number;
  FF: number;
  P: number;
  V?: number;
  /** Head tied to the embedding (default false) and RoPE base (default 10000), as a real config sets them. */
  tie?: boolean;
  ropeTheta?: number;
}

export type ModelShape = Gpt2Shape | LlamaShape;

interface Init {
  name: string;
  shape: number[];
  std: number;
  /** 'one' for norm weights, 'zero' for biases. */
  fill?: 'one' | 'zero';
}

/**
 * The architecture table's required params in its order and save_pretrained's names (GPT-2's
 * tied head is not saved), initialised by role.
 */
function params(s: ModelShape): Init[] {
  const spec = parseConfig(configJson(s));
  const resid = 0.02 / Math.sqrt(2 * s.L);
  return forwardWeights(spec)
    .filter((t) => !t.optional)
    .map((t) => {
      const name = storedName(spec.family, t.name);
      if (t.role === 'norm1' || t.role === 'norm2' || t.role === 'norm_f') return { name, shape: t.shape, std: 0, fill: 'one' };
      if (t.role.endsWith('.bias')) return { name, shape: t.shape, std: 0, fill: 'zero' };
      const std = t.role === 'attn.o' || t.role === 'mlp.down' ? resid : t.role === 'pos_embed' ? 0.01 : 0.02;
      return { name, shape: t.shape, std };
    });
}

export function configJson(s: ModelShape): Record<string, unknown> {
  const V = s.V ?? BYTE_VOCAB;
  const eot = V - 1;
  if (s.family === 'gpt2') {
    return {
      activation_function: 'gelu_new',
      architectures: ['GPT2LMHeadModel'],
      attn_pdrop: 0,
      bos_token_id: eot,
      embd_pdrop: 0,
      eos_token_id: eot,
      initializer_range: 0.02,
      layer_norm_epsilon: 1e-5,
      model_type: 'gpt2',
      n_embd: s.C,
      n_head: s.NH,
      n_inner: null,
      n_layer: s.L,
      n_positions: s.P,
      resid_pdrop: 0,
      scale_attn_weights: true,
      tie_word_embeddings: true,
      torch_dtype: 'float32',
      vocab_size: V,
    };
  }
  return {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    bos_token_id: eot,
    eos_token_id: eot,
    head_dim: s.C / s.NH,
    hidden_act: 'silu',
    hidden_size: s.C,
    intermediate_size: s.FF,
    max_position_embeddings: s.P,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: s.NH,
    num_hidden_layers: s.L,
    num_key_value_heads: s.NKV,
    rms_norm_eps: 1e-5,
    rope_theta: s.ropeTheta ?? 10000,
    tie_word_embeddings: s.tie ?? false,
    torch_dtype: 'float32',
    vocab_size: V,
  };
}

/** Normal samples by Box-Muller from a seeded mulberry32 stream. */
function normal(rand: () => number): number {
  const u = 1 - rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** config.json, model.safetensors (F32) and the byte-level tokenizer.json of a new model. */
export function initCheckpoint(s: ModelShape, seed: number): Map<string, Uint8Array> {
  const rand = mulberry32(seed);
  const entries = params(s).map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (p.fill === 'one') v.fill(1);
    else if (p.fill !== 'zero') for (let i = 0; i < n; i++) v[i] = p.std * normal(rand);
    return { name: p.name, dtype: 'F32' as const, shape: p.shape, data: encodeFromF32(v, 'F32') };
  });
  const enc = new TextEncoder();
  return new Map([
    ['config.json', enc.encode(`${JSON.stringify(configJson(s), null, 2)}\n`)],
    ['model.safetensors', writeSafetensors(entries, { format: 'pt' })],
    ['tokenizer.json', enc.encode(byteTokenizerJson())],
  ]);
}

/** Number of parameters of a shape (what the forward reads; GPT-2's head is tied). */
export function paramCount(s: ModelShape): number {
  return params(s).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}
