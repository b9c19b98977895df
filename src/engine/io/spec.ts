/**
 * The typed model spec every other part of the engine works from. Parsed once from config.json
 * at the boundary (io/config.ts) with cross-field checks; nothing downstream reads raw config.
 */
export type Family = 'gpt2' | 'llama';
/** Hugging Face `model_type` values we accept, and the family each maps to. */
export const SUPPORTED_MODEL_TYPES = { gpt2: 'gpt2', llama: 'llama', mistral: 'llama', qwen2: 'llama' } as const;
export type ModelType = keyof typeof SUPPORTED_MODEL_TYPES;

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
  maxPositions: number; // GPT-2 n_positions; Llama max_position_embeddings
  norm: 'layernorm' | 'rmsnorm';
  normEps: number; // layer_norm_epsilon / rms_norm_eps
  activation: 'gelu_new' | 'silu';
  positions: 'learned' | 'rope';
  ropeTheta: number; // 10000 when unused
  attnBias: boolean; // q/k/v projection bias (GPT-2 true; qwen2 true; llama attention_bias)
  /** Output projection bias (GPT-2 c_proj: true; llama: attention_bias; qwen2/mistral: false). Absent = false. */
  attnOutBias?: boolean;
  mlpBias: boolean; // GPT-2 true; llama mlp_bias
  tieWordEmbeddings: boolean;
  /** Mistral `sliding_window`: attention looks back at most this many tokens. Absent = full causal. */
  slidingWindow?: number;
  torchDtype?: string; // informational, from config
  bosTokenId?: number;
  eosTokenId?: number;
}
