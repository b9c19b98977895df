/**
 * The fixed vocabulary of weight roles: what each learned tensor of an architecture table
 * (architectures/*.json) is for. The tables map checkpoint names to these roles; the forward
 * passes (GPU, float64 reference, ONNX training graph) read weights by role only, so a family
 * whose math matches an existing one needs nothing but its table.
 *
 * Matrices follow the family's `layout`: 'linear' stores W (out, in) as nn.Linear does,
 * 'conv1d' W (in, out) as GPT-2's Conv1D does. Fused roles concatenate along the output
 * features, in this order:
 *   attn.qkv     q (NH*HS), then k (NKV*HS), then v (NKV*HS)
 *   mlp.gate_up  gate (FF), then up (FF); the block computes up * act(gate)
 * Embeddings and the head are always (V, C) / (P, C) rows, whatever the layout.
 * Norm scales are (C), except q_norm / k_norm: (HS) when they normalise each head (Qwen3), or
 * (NH*HS) / (NKV*HS) when they normalise the whole projection (OLMo 2); ModelSpec.qkNorm says which.
 */
export const GLOBAL_ROLES = ['embed', 'pos_embed', 'norm_f', 'norm_f.bias', 'head'] as const;

export const BLOCK_ROLES = [
  'norm1',
  'norm1.bias',
  'attn.qkv',
  'attn.qkv.bias',
  'attn.q',
  'attn.q.bias',
  'attn.k',
  'attn.k.bias',
  'attn.v',
  'attn.v.bias',
  'attn.q_norm',
  'attn.k_norm',
  'attn.o',
  'attn.o.bias',
  'attn.post_norm',
  'norm2',
  'norm2.bias',
  'mlp.gate_up',
  'mlp.gate_up.bias',
  'mlp.gate',
  'mlp.gate.bias',
  'mlp.up',
  'mlp.up.bias',
  'mlp.down',
  'mlp.down.bias',
  'mlp.post_norm',
] as const;

/** embed (V, C); pos_embed (P, C) learned positions; norm_f(.bias) final norm; head (V, C) LM head. */
export type GlobalRole = (typeof GLOBAL_ROLES)[number];
/**
 * One transformer block's tensors: norm1 → attention (q, k, v, or fused qkv; q_norm / k_norm; o)
 * → attn.post_norm → residual; norm2 → MLP → mlp.post_norm → residual. A block has a pre-norm
 * (norm1, norm2), a post-norm (Gemma 2 has both, OLMo 2 only the post-norms) or both.
 */
export type BlockRole = (typeof BLOCK_ROLES)[number];
export type WeightRole = GlobalRole | BlockRole;

/** How the block's projection matrices are stored (see above). */
export type WeightLayout = 'linear' | 'conv1d';

export function isGlobalRole(role: string): role is GlobalRole {
  return (GLOBAL_ROLES as readonly string[]).includes(role);
}

export function isBlockRole(role: string): role is BlockRole {
  return (BLOCK_ROLES as readonly string[]).includes(role);
}

/** A matrix or norm scale with its optional bias / shift. */
export interface Affine<T> {
  w: T;
  b?: T;
}

/** The attention's input projections: one fused (q | k | v) matrix or three. */
export type AttentionIn<T> = { kind: 'fused'; qkv: Affine<T> } | { kind: 'split'; q: Affine<T>; k: Affine<T>; v: Affine<T> };

/** The MLP's input side: up alone (act(up)), or gate and up (up * act(gate)), possibly fused (gate | up). */
export type MlpIn<T> = { kind: 'plain'; up: Affine<T> } | { kind: 'gated'; gate: Affine<T>; up: Affine<T> } | { kind: 'gated-fused'; gateUp: Affine<T> };

export interface BlockWeights<T> {
  /** Input norm of the attention (absent in OLMo 2). */
  norm1?: Affine<T>;
  attn: AttentionIn<T>;
  /** RMSNorm scales of q and k before RoPE (Qwen3, OLMo 2); both or neither. */
  qNorm?: T;
  kNorm?: T;
  o: Affine<T>;
  /** Norm of the attention's output before the residual add (Gemma 2, OLMo 2). */
  attnPostNorm?: Affine<T>;
  /** Input norm of the MLP (absent in OLMo 2). */
  norm2?: Affine<T>;
  mlp: MlpIn<T>;
  down: Affine<T>;
  /** Norm of the MLP's output before the residual add (Gemma 2, OLMo 2). */
  mlpPostNorm?: Affine<T>;
}

/**
 * Every weight the forward pass reads, bound by role (T: a GPU WeightRef, float64 values, an ONNX
 * value name). `head` is the embedding itself when the table says an absent head falls back to it.
 */
export interface ModelWeights<T> {
  layout: WeightLayout;
  embed: T;
  posEmbed?: T;
  blocks: BlockWeights<T>[];
  normF: Affine<T>;
  head: T;
}
