/**
 * Hugging Face config.json -> ModelSpec, parsed once at the boundary with cross-field checks,
 * so nothing downstream sees an ill-formed config. Field names and defaults follow transformers'
 * GPT2Config, LlamaConfig, MistralConfig, Qwen2Config, Phi3Config, Qwen3Config, Gemma2Config and
 * Olmo2Config (RoPE scaling: modeling_rope_utils); anything that would change
 * the forward pass in a way the engine does not implement is refused with a clear error rather
 * than ignored. Which model_type belongs to which family is the architecture tables' fact
 * (io/weights.ts); each family has one parser here.
 */
import { ConfigError, UnsupportedArchitectureError } from '../errors.ts';
import type { Family, ModelSpec, ModelType } from './spec.ts';
import { SUPPORTED_MODEL_TYPES } from './weights.ts';

type Json = Record<string, unknown>;

function supportedList(): string {
  return Object.keys(SUPPORTED_MODEL_TYPES).join(', ');
}

class Fields {
  constructor(
    readonly raw: Json,
    readonly file: string,
  ) {}

  private fail(message: string): never {
    throw new ConfigError(message, { file: this.file });
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  /** A positive integer; `fallback` when absent/null, otherwise required. */
  int(key: string, fallback?: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.fail(`missing required field '${key}' (a positive integer)`);
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(`'${key}' must be a positive integer (got ${JSON.stringify(v)})`);
    return v as number;
  }

  positive(key: string, fallback: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(`'${key}' must be a positive number (got ${JSON.stringify(v)})`);
    return v as number;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(`'${key}' must be true or false (got ${JSON.stringify(v)})`);
    return v as boolean;
  }

  string(key: string, fallback: string): string {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') this.fail(`'${key}' must be a string (got ${JSON.stringify(v)})`);
    return v as string;
  }

  /** Token ids may be an int or a list (Llama 3 eos); the first one is kept. */
  tokenId(key: string): number | undefined {
    const v = this.raw[key];
    const first = Array.isArray(v) ? v[0] : v;
    if (first === undefined || first === null) return undefined;
    if (typeof first !== 'number' || !Number.isSafeInteger(first) || first < 0) this.fail(`'${key}' must be a non-negative integer (got ${JSON.stringify(v)})`);
    return first as number;
  }

  torchDtype(): string | undefined {
    const v = this.raw.torch_dtype ?? this.raw.dtype;
    return typeof v === 'string' ? v : undefined;
  }
}

/** Parses a config.json object; throws ConfigError / UnsupportedArchitectureError naming `file`. */
export function parseConfig(json: unknown, file = 'config.json'): ModelSpec {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError('config must be a JSON object', { file });
  }
  const raw = json as Json;
  const modelType = raw.model_type;
  if (modelType === undefined || modelType === null) {
    throw new ConfigError(`missing 'model_type' (supported: ${supportedList()})`, { file });
  }
  if (typeof modelType !== 'string' || !Object.prototype.hasOwnProperty.call(SUPPORTED_MODEL_TYPES, modelType)) {
    throw new UnsupportedArchitectureError(`model_type ${JSON.stringify(modelType)} is not supported (supported: ${supportedList()})`, { file });
  }
  const f = new Fields(raw, file);
  const spec = PARSERS[SUPPORTED_MODEL_TYPES[modelType as ModelType]](f, modelType as ModelType);
  const bos = f.tokenId('bos_token_id');
  const eos = f.tokenId('eos_token_id');
  const torchDtype = f.torchDtype();
  if (bos !== undefined) spec.bosTokenId = bos;
  if (eos !== undefined) spec.eosTokenId = eos;
  if (torchDtype !== undefined) spec.torchDtype = torchDtype;
  for (const [key, id] of [['bos_token_id', bos], ['eos_token_id', eos]] as const) {
    if (id !== undefined && id >= spec.vocabSize) throw new ConfigError(`'${key}' ${id} is outside the vocabulary (vocab_size ${spec.vocabSize})`, { file });
  }
  return spec;
}

function unsupported(f: Fields, message: string): never {
  throw new UnsupportedArchitectureError(message, { file: f.file });
}

function parseGpt2(f: Fields): ModelSpec {
  const hiddenSize = f.int('n_embd');
  const numHeads = f.int('n_head');
  if (hiddenSize % numHeads !== 0) throw new ConfigError(`n_embd ${hiddenSize} is not divisible by n_head ${numHeads}`, { file: f.file });
  const act = f.string('activation_function', 'gelu_new');
  // GPT-2's tanh GELU; 'gelu_pytorch_tanh' is the same function under its PyTorch name.
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    unsupported(f, `activation_function '${act}' is not supported for gpt2 (supported: gelu_new, gelu_pytorch_tanh)`);
  }
  if (!f.bool('scale_attn_weights', true)) unsupported(f, 'scale_attn_weights=false is not supported');
  if (f.bool('scale_attn_by_inverse_layer_idx', false)) unsupported(f, 'scale_attn_by_inverse_layer_idx=true is not supported');
  if (f.bool('add_cross_attention', false)) unsupported(f, 'add_cross_attention=true (encoder-decoder GPT-2) is not supported');
  return {
    modelType: 'gpt2',
    family: 'gpt2',
    vocabSize: f.int('vocab_size'),
    hiddenSize,
    numLayers: f.int('n_layer'),
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    intermediateSize: f.int('n_inner', 4 * hiddenSize),
    maxPositions: f.int('n_positions'),
    norm: 'layernorm',
    normEps: f.positive('layer_norm_epsilon', 1e-5),
    activation: 'gelu_new',
    positions: 'learned',
    ropeTheta: 10000,
    attnBias: true,
    attnOutBias: true,
    mlpBias: true,
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
  };
}

/**
 * C, NH, NKV and HS of a RoPE decoder (LlamaConfig field names; head_dim may be given, and
 * defaults to C / NH, or to the family's own default: Qwen3 128, Gemma 2 256).
 */
function attentionShape(f: Fields, headDimDefault?: number): Pick<ModelSpec, 'hiddenSize' | 'numHeads' | 'numKvHeads' | 'headDim'> {
  const hiddenSize = f.int('hidden_size');
  const numHeads = f.int('num_attention_heads');
  const numKvHeads = f.int('num_key_value_heads', numHeads);
  if (!f.has('head_dim') && headDimDefault === undefined && hiddenSize % numHeads !== 0) {
    throw new ConfigError(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} (and no head_dim is given)`, { file: f.file });
  }
  const headDim = f.int('head_dim', headDimDefault ?? hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ConfigError(`num_attention_heads ${numHeads} is not divisible by num_key_value_heads ${numKvHeads}`, { file: f.file });
  }
  if (headDim % 2 !== 0) throw new ConfigError(`head_dim ${headDim} must be even for rotary embeddings`, { file: f.file });
  return { hiddenSize, numHeads, numKvHeads, headDim };
}

function requireSilu(f: Fields, modelType: ModelType): void {
  const act = f.string('hidden_act', 'silu');
  if (act !== 'silu') unsupported(f, `hidden_act '${act}' is not supported for ${modelType} (supported: silu)`);
}

const ROPE_TYPES = ['linear', 'dynamic', 'yarn', 'llama3'] as const;

/**
 * RoPE's base and frequency scaling, read as transformers reads them: the legacy `rope_theta` +
 * `rope_scaling` {rope_type (or type), factor, ...}, or transformers 5's `rope_parameters` (the
 * same fields with rope_theta inside; `rope_scaling` wins when both are given). Defaults follow
 * modeling_rope_utils: llama3 and yarn take original_max_position_embeddings from the top-level
 * field when the config has one (Phi-3 style), else from the dict, else max_position_embeddings;
 * yarn's factor defaults to max_position_embeddings / original, its attention factor to
 * 0.1·ln(factor) + 1 (or the mscale / mscale_all_dim ratio), beta_fast 32, beta_slow 1, truncate
 * true. Any other rope_type (longrope, mrope, ...) is refused by name.
 */
function rope(f: Fields, modelType: ModelType, maxPositions: number): Pick<ModelSpec, 'ropeTheta' | 'ropeScaling'> {
  const field = f.has('rope_scaling') ? 'rope_scaling' : f.has('rope_parameters') ? 'rope_parameters' : undefined;
  const raw = field === undefined ? {} : f.raw[field];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`'${field!}' must be an object or null (got ${JSON.stringify(raw)})`, { file: f.file });
  const dict = raw as Json;
  const nested = Object.keys(dict).filter((k) => typeof dict[k] === 'object' && dict[k] !== null && !Array.isArray(dict[k]));
  if (nested.length) unsupported(f, `${field!} per layer type (${nested.map((k) => `'${k}'`).join(', ')}) is not supported (one RoPE for every layer only)`);
  const type = dict.rope_type ?? dict.type ?? 'default';
  const sub = new Fields(dict, f.file);
  const num = (key: string, fallback?: number): number => {
    const v = dict[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`missing '${field!}.${key}' (a positive number) for rope_type '${String(type)}'`, { file: f.file });
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(`'${field!}.${key}' must be a positive number (got ${JSON.stringify(v)})`, { file: f.file });
    return v;
  };
  const ropeTheta = sub.has('rope_theta') ? num('rope_theta') : f.positive('rope_theta', 10000);
  const partial = dict.partial_rotary_factor ?? f.raw.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1) {
    unsupported(f, `partial_rotary_factor ${JSON.stringify(partial)} is not supported for ${modelType} (only 1: RoPE over the whole head)`);
  }
  if (type === 'default') return { ropeTheta };
  if (typeof type !== 'string' || !(ROPE_TYPES as readonly string[]).includes(type)) {
    const shown = typeof type === 'string' ? `'${type}'` : JSON.stringify(type);
    unsupported(f, `${field!} ${shown} is not supported (supported rope_type: default, ${ROPE_TYPES.join(', ')})`);
  }
  // Top-level original_max_position_embeddings (Phi-3's place for it) wins over the dict's.
  const originalMaxPositions = (): number => (f.has('original_max_position_embeddings') ? f.int('original_max_position_embeddings') : sub.int('original_max_position_embeddings', maxPositions));
  switch (type as (typeof ROPE_TYPES)[number]) {
    case 'linear':
      return { ropeTheta, ropeScaling: { type: 'linear', factor: num('factor') } };
    case 'dynamic':
      return { ropeTheta, ropeScaling: { type: 'dynamic', factor: num('factor') } };
    case 'llama3': {
      const low = num('low_freq_factor');
      const high = num('high_freq_factor');
      if (high <= low) throw new ConfigError(`'${field!}.high_freq_factor' ${high} must exceed '${field!}.low_freq_factor' ${low}`, { file: f.file });
      return { ropeTheta, ropeScaling: { type: 'llama3', factor: num('factor'), lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: originalMaxPositions() } };
    }
    case 'yarn': {
      const original = originalMaxPositions();
      const factor = num('factor', maxPositions / original);
      const mscale = (scale: number, m = 1): number => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      const m = sub.has('mscale') ? num('mscale') : undefined;
      const mAll = sub.has('mscale_all_dim') ? num('mscale_all_dim') : undefined;
      const attentionFactor = sub.has('attention_factor') ? num('attention_factor') : m !== undefined && mAll !== undefined ? mscale(factor, m) / mscale(factor, mAll) : mscale(factor);
      return {
        ropeTheta,
        ropeScaling: { type: 'yarn', factor, originalMaxPositions: original, attentionFactor, betaFast: num('beta_fast', 32), betaSlow: num('beta_slow', 1), truncate: sub.bool('truncate', true) },
      };
    }
  }
}

/** `sliding_window` as Mistral and Phi-3 read it: kept only when shorter than the positions. */
function slidingWindow(f: Fields, spec: ModelSpec): ModelSpec {
  if (f.has('sliding_window')) {
    const window = f.int('sliding_window');
    if (window < spec.maxPositions) spec.slidingWindow = window;
  }
  return spec;
}

/** The fields every RoPE decoder here reads the same way (LlamaConfig names); family-specific ones are set by its parser. */
function ropeDecoder(f: Fields, modelType: ModelType, family: Family, normEpsDefault: number, tieDefault: boolean, headDimDefault?: number): ModelSpec {
  const shape = attentionShape(f, headDimDefault);
  const maxPositions = f.int('max_position_embeddings');
  return {
    modelType,
    family,
    vocabSize: f.int('vocab_size'),
    hiddenSize: shape.hiddenSize,
    numLayers: f.int('num_hidden_layers'),
    numHeads: shape.numHeads,
    numKvHeads: shape.numKvHeads,
    headDim: shape.headDim,
    intermediateSize: f.int('intermediate_size'),
    maxPositions,
    norm: 'rmsnorm',
    normEps: f.positive('rms_norm_eps', normEpsDefault),
    activation: 'silu',
    positions: 'rope',
    ...rope(f, modelType, maxPositions),
    attnBias: false,
    attnOutBias: false,
    mlpBias: false,
    tieWordEmbeddings: f.bool('tie_word_embeddings', tieDefault),
  };
}

/** Llama (3.x: rope_type llama3), Mistral and Qwen2 (2.5): one table, llama.json. */
function parseLlama(f: Fields, modelType: ModelType): ModelSpec {
  requireSilu(f, modelType);
  if (modelType === 'qwen2' && f.bool('use_sliding_window', false)) unsupported(f, 'qwen2 use_sliding_window=true is not supported');
  const spec = ropeDecoder(f, modelType, 'llama', 1e-6, false);
  // Llama: attention_bias puts a bias on q, k, v and o; Qwen2 always biases q, k, v (never o);
  // Mistral has no biases.
  const attentionBias = modelType === 'llama' ? f.bool('attention_bias', false) : false;
  spec.attnBias = modelType === 'qwen2' ? true : attentionBias;
  spec.attnOutBias = attentionBias;
  spec.mlpBias = modelType === 'llama' ? f.bool('mlp_bias', false) : false;
  return modelType === 'mistral' ? slidingWindow(f, spec) : spec;
}

/**
 * Phi-3 (Phi3Config): Llama's math over fused qkv_proj / gate_up_proj weights (architectures/
 * phi3.json), no biases, rms_norm_eps default 1e-5, a Mistral-style sliding window.
 */
function parsePhi3(f: Fields): ModelSpec {
  requireSilu(f, 'phi3');
  if (f.bool('attention_bias', false)) unsupported(f, 'attention_bias=true is not supported for phi3 (transformers\' Phi-3 projections have no bias)');
  return slidingWindow(f, ropeDecoder(f, 'phi3', 'phi3', 1e-5, false));
}

/** attention_bias as Qwen3, Gemma 2 and OLMo 2 read it: a bias on q, k, v and o alike. */
function attentionBias(f: Fields, spec: ModelSpec): void {
  spec.attnBias = f.bool('attention_bias', false);
  spec.attnOutBias = spec.attnBias;
}

/**
 * Qwen3 (Qwen3Config): Llama's block with an explicit head_dim (default 128; NH·HS need not be
 * C) and an RMSNorm over each head's features of q and k (q_norm, k_norm) before RoPE.
 */
function parseQwen3(f: Fields): ModelSpec {
  requireSilu(f, 'qwen3');
  if (f.bool('use_sliding_window', false)) unsupported(f, 'qwen3 use_sliding_window=true is not supported');
  const spec = ropeDecoder(f, 'qwen3', 'qwen3', 1e-6, false, 128);
  attentionBias(f, spec);
  spec.qkNorm = 'head';
  return spec;
}

/**
 * Gemma 2 (Gemma2Config, defaults as there): embeddings × √C, RMSNorm by (1 + w), four norms per
 * block (input, post-attention, pre- and post-feed-forward), GeGLU with the tanh GELU, scores
 * scaled by query_pre_attn_scalar^-1/2 and soft-capped, a sliding window on the layers
 * `layer_types` marks 'sliding_attention' (by default every other layer from layer 0), and a
 * soft-capped final logit.
 */
function parseGemma2(f: Fields): ModelSpec {
  const act = f.string('hidden_activation', 'gelu_pytorch_tanh');
  if (act !== 'gelu_pytorch_tanh' && act !== 'gelu_new') unsupported(f, `hidden_activation '${act}' is not supported for gemma2 (supported: gelu_pytorch_tanh)`);
  if (f.bool('use_bidirectional_attention', false)) unsupported(f, 'use_bidirectional_attention=true is not supported for gemma2 (causal attention only)');
  const spec = ropeDecoder(f, 'gemma2', 'gemma2', 1e-6, true, 256);
  attentionBias(f, spec);
  spec.activation = 'gelu_new';
  spec.normPlusOne = true;
  spec.embedScale = Math.sqrt(spec.hiddenSize);
  spec.attnScale = 1 / Math.sqrt(f.positive('query_pre_attn_scalar', 256));
  const cap = (key: string, fallback: number): number | undefined => (f.raw[key] === null ? undefined : f.positive(key, fallback));
  const attnCap = cap('attn_logit_softcapping', 50);
  const finalCap = cap('final_logit_softcapping', 30);
  if (attnCap !== undefined) spec.attnSoftcap = attnCap;
  if (finalCap !== undefined) spec.finalSoftcap = finalCap;
  const window = f.raw.sliding_window === null ? undefined : f.int('sliding_window', 4096);
  const types = f.raw.layer_types;
  let sliding: boolean[];
  if (types === undefined || types === null) sliding = Array.from({ length: spec.numLayers }, (_, i) => i % 2 === 0);
  else {
    if (!Array.isArray(types) || types.length !== spec.numLayers || types.some((t) => t !== 'sliding_attention' && t !== 'full_attention')) {
      throw new ConfigError(`'layer_types' must list 'sliding_attention' or 'full_attention' for each of the ${spec.numLayers} layers (got ${JSON.stringify(types)})`, { file: f.file });
    }
    sliding = types.map((t) => t === 'sliding_attention');
  }
  if (window !== undefined && sliding.some(Boolean)) {
    spec.slidingWindow = window;
    if (!sliding.every(Boolean)) spec.slidingLayers = sliding;
  }
  return spec;
}

/**
 * OLMo 2 (Olmo2Config): no norm before attention or MLP but one after each (post_attention_ and
 * post_feedforward_layernorm, before the residual add), RMSNorm on the whole q and k projections
 * (q_norm over NH·HS, k_norm over NKV·HS) before RoPE; rms_norm_eps default 1e-5.
 */
function parseOlmo2(f: Fields): ModelSpec {
  requireSilu(f, 'olmo2');
  const spec = ropeDecoder(f, 'olmo2', 'olmo2', 1e-5, false);
  attentionBias(f, spec);
  spec.qkNorm = 'projection';
  return spec;
}

const PARSERS: Record<Family, (f: Fields, modelType: ModelType) => ModelSpec> = {
  gpt2: (f) => parseGpt2(f),
  llama: parseLlama,
  phi3: (f) => parsePhi3(f),
  qwen3: (f) => parseQwen3(f),
  gemma2: (f) => parseGemma2(f),
  olmo2: (f) => parseOlmo2(f),
};
