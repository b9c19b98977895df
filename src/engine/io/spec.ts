/**
 * The typed model spec every other part of the engine works from. Parsed once from config.json
 * at the boundary (io/config.ts) with cross-field checks; nothing downstream reads raw config.
 */
/** One architecture table (io/architectures/<family>.json) each. */
export type Family = 'gpt2' | 'llama' | 'phi3' | 'qwen3' | 'gemma2' | 'olmo2';
/** Hugging Face `model_type` values; the tables' `model_types` map each to its family (SUPPORTED_MODEL_TYPES). */
export type ModelType = 'gpt2' | 'llama' | 'mistral' | 'qwen2' | 'phi3' | 'qwen3' | 'gemma2' | 'olmo2';
export { SUPPORTED_MODEL_TYPES } from './weights.ts';

export interface ModelSpec {
  modelType: ModelType;
  family: Family;
  vocabSize: number; // V
  hiddenSize: number; // C
  numLayers: number; // L
  numHeads: number; // NH
  numKvHeads: number; // NKV (= NH for GPT-2); NH % NKV == 0
  headDim: number; // HS = C / NH unless config says head_dim
  intermediateSize: number; // FF (GPT-2: n_inner ?? 4C)
  maxPositions: number; // GPT-2 n_positions; Llama, Phi-3 max_position_embeddings
  norm: 'layernorm' | 'rmsnorm';
  normEps: number; // layer_norm_epsilon / rms_norm_eps
  /** 'gelu_new': the tanh GELU (GPT-2's gelu_new, PyTorch's gelu_pytorch_tanh); on a gated MLP, up * act(gate). */
  activation: 'gelu_new' | 'silu';
  positions: 'learned' | 'rope';
  ropeTheta: number; // 10000 when unused
  /** RoPE frequency scaling (rope_scaling / rope_parameters); absent = plain RoPE (model/rope.ts computes the frequencies). */
  ropeScaling?: RopeScaling;
  attnBias: boolean; // q/k/v projection bias (GPT-2 true; qwen2 true; llama attention_bias)
  /** Output projection bias (GPT-2 c_proj: true; llama: attention_bias; qwen2/mistral: false). Absent = false. */
  attnOutBias?: boolean;
  mlpBias: boolean; // GPT-2 true; llama mlp_bias
  tieWordEmbeddings: boolean;
  /** Mistral / Phi-3 / Gemma 2 `sliding_window`: query i sees keys j with i - W < j <= i. Absent = full causal. */
  slidingWindow?: number;
  /** Which layers use `slidingWindow` (Gemma 2: every other one, from layer 0); absent = every layer. */
  slidingLayers?: boolean[];
  /** Gemma: RMSNorm scales by (1 + w) instead of w. */
  normPlusOne?: boolean;
  /** Gemma: the embedding rows are multiplied by this (√C). Absent = 1. */
  embedScale?: number;
  /** Attention score scale (Gemma 2: query_pre_attn_scalar^-1/2). Absent = 1/√HS. */
  attnScale?: number;
  /** Gemma 2 attn_logit_softcapping c: scores s -> c·tanh(s / c) before the mask. */
  attnSoftcap?: number;
  /** Gemma 2 final_logit_softcapping c: logits z -> c·tanh(z / c). */
  finalSoftcap?: number;
  /**
   * RMSNorm on the queries and keys before RoPE: 'head' over each head's HS features (Qwen3
   * q_norm/k_norm of shape HS), 'projection' over the whole (NH*HS) / (NKV*HS) projection (OLMo 2).
   */
  qkNorm?: 'head' | 'projection';
  torchDtype?: string; // informational, from config
  bosTokenId?: number;
  eosTokenId?: number;
}

/**
 * RoPE frequency scaling as transformers' modeling_rope_utils defines it (rope_type, with the
 * fields it reads; defaults already applied by io/config.ts). Frequencies: model/rope.ts.
 */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  /** NTK-aware, grown with the sequence: the base is rescaled once a sequence exceeds `maxPositions`. */
  | { type: 'dynamic'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: 'yarn'; factor: number; originalMaxPositions: number; attentionFactor: number; betaFast: number; betaSlow: number; truncate: boolean };
