/**
 * The typed model spec every other part of the engine works from. Parsed once from config.json
 * at the boundary (io/config.ts) with cross-field checks; nothing downstream reads raw config.
 */
/** One architecture table (io/architectures/<family>.json) each. */
export type Family = 'gpt2' | 'llama' | 'phi3';
/** Hugging Face `model_type` values; the tables' `model_types` map each to its family (SUPPORTED_MODEL_TYPES). */
export type ModelType = 'gpt2' | 'llama' | 'mistral' | 'qwen2' | 'phi3';
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
  activation: 'gelu_new' | 'silu';
  positions: 'learned' | 'rope';
  ropeTheta: number; // 10000 when unused
  attnBias: boolean; // q/k/v projection bias (GPT-2 true; qwen2 true; llama attention_bias)
  /** Output projection bias (GPT-2 c_proj: true; llama: attention_bias; qwen2/mistral: false). Absent = false. */
  attnOutBias?: boolean;
  mlpBias: boolean; // GPT-2 true; llama mlp_bias
  tieWordEmbeddings: boolean;
  /** Mistral / Phi-3 `sliding_window`: query i sees keys j with i - W < j <= i. Absent = full causal. */
  slidingWindow?: number;
  torchDtype?: string; // informational, from config
  bosTokenId?: number;
  eosTokenId?: number;
}
