/**
 * Hugging Face config.json -> ModelSpec, parsed once at the boundary with cross-field checks,
 * so nothing downstream sees an ill-formed config. Field names and defaults follow transformers'
 * GPT2Config, LlamaConfig, MistralConfig, Qwen2Config and Phi3Config; anything that would change
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

/** C, NH, NKV and HS of a RoPE decoder (LlamaConfig field names; head_dim may be given). */
function attentionShape(f: Fields): Pick<ModelSpec, 'hiddenSize' | 'numHeads' | 'numKvHeads' | 'headDim'> {
  const hiddenSize = f.int('hidden_size');
  const numHeads = f.int('num_attention_heads');
  const numKvHeads = f.int('num_key_value_heads', numHeads);
  if (!f.has('head_dim') && hiddenSize % numHeads !== 0) {
    throw new ConfigError(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} (and no head_dim is given)`, { file: f.file });
  }
  const headDim = f.int('head_dim', hiddenSize / numHeads);
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

/** Plain RoPE only: any rope_scaling variant is refused. */
function requirePlainRope(f: Fields): void {
  const ropeScaling = f.raw.rope_scaling;
  if (ropeScaling !== undefined && ropeScaling !== null) {
    const kind = typeof ropeScaling === 'object' && !Array.isArray(ropeScaling) ? ((ropeScaling as Json).rope_type ?? (ropeScaling as Json).type) : undefined;
    unsupported(f, `rope_scaling ${kind === undefined ? JSON.stringify(ropeScaling) : `'${String(kind)}'`} is not supported (only rope_scaling: null, plain RoPE)`);
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

function parseLlama(f: Fields, modelType: ModelType): ModelSpec {
  const shape = attentionShape(f);
  requireSilu(f, modelType);
  requirePlainRope(f);
  if (modelType === 'qwen2' && f.bool('use_sliding_window', false)) unsupported(f, 'qwen2 use_sliding_window=true is not supported');
  // Llama: attention_bias puts a bias on q, k, v and o; Qwen2 always biases q, k, v (never o);
  // Mistral has no biases.
  const attentionBias = modelType === 'llama' ? f.bool('attention_bias', false) : false;
  const spec: ModelSpec = {
    modelType,
    family: 'llama',
    vocabSize: f.int('vocab_size'),
    hiddenSize: shape.hiddenSize,
    numLayers: f.int('num_hidden_layers'),
    numHeads: shape.numHeads,
    numKvHeads: shape.numKvHeads,
    headDim: shape.headDim,
    intermediateSize: f.int('intermediate_size'),
    maxPositions: f.int('max_position_embeddings'),
    norm: 'rmsnorm',
    normEps: f.positive('rms_norm_eps', 1e-6),
    activation: 'silu',
    positions: 'rope',
    ropeTheta: f.positive('rope_theta', 10000),
    attnBias: modelType === 'qwen2' ? true : attentionBias,
    attnOutBias: attentionBias,
    mlpBias: modelType === 'llama' ? f.bool('mlp_bias', false) : false,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
  };
  return modelType === 'mistral' ? slidingWindow(f, spec) : spec;
}

/**
 * Phi-3 (Phi3Config): Llama's math over fused qkv_proj / gate_up_proj weights (architectures/
 * phi3.json), no biases, rms_norm_eps default 1e-5, a Mistral-style sliding window.
 */
function parsePhi3(f: Fields): ModelSpec {
  const shape = attentionShape(f);
  requireSilu(f, 'phi3');
  requirePlainRope(f);
  const partial = f.raw.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1) {
    unsupported(f, `partial_rotary_factor ${JSON.stringify(partial)} is not supported for phi3 (only 1: RoPE over the whole head)`);
  }
  if (f.bool('attention_bias', false)) unsupported(f, 'attention_bias=true is not supported for phi3 (transformers\' Phi-3 projections have no bias)');
  return slidingWindow(f, {
    modelType: 'phi3',
    family: 'phi3',
    vocabSize: f.int('vocab_size'),
    hiddenSize: shape.hiddenSize,
    numLayers: f.int('num_hidden_layers'),
    numHeads: shape.numHeads,
    numKvHeads: shape.numKvHeads,
    headDim: shape.headDim,
    intermediateSize: f.int('intermediate_size'),
    maxPositions: f.int('max_position_embeddings'),
    norm: 'rmsnorm',
    normEps: f.positive('rms_norm_eps', 1e-5),
    activation: 'silu',
    positions: 'rope',
    ropeTheta: f.positive('rope_theta', 10000),
    attnBias: false,
    attnOutBias: false,
    mlpBias: false,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
  });
}

const PARSERS: Record<Family, (f: Fields, modelType: ModelType) => ModelSpec> = {
  gpt2: (f) => parseGpt2(f),
  llama: parseLlama,
  phi3: (f) => parsePhi3(f),
};
