import { describe, expect, it } from 'vitest';
import { ConfigError, UnsupportedArchitectureError } from '../errors.ts';
import { parseConfig } from './config.ts';

const gpt2 = {
  model_type: 'gpt2',
  vocab_size: 50257,
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
  n_positions: 1024,
  n_inner: null,
  activation_function: 'gelu_new',
  layer_norm_epsilon: 1e-5,
  bos_token_id: 50256,
  eos_token_id: 50256,
  torch_dtype: 'float32',
};

const llama = {
  model_type: 'llama',
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  max_position_embeddings: 4096,
  hidden_act: 'silu',
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: null,
  bos_token_id: 1,
  eos_token_id: [2, 3],
};

// microsoft/Phi-3-mini-4k-instruct's config.json fields (auto_map dropped).
const phi3 = {
  architectures: ['Phi3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 1,
  embd_pdrop: 0.0,
  eos_token_id: 32000,
  hidden_act: 'silu',
  hidden_size: 3072,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 4096,
  model_type: 'phi3',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  original_max_position_embeddings: 4096,
  pad_token_id: 32000,
  resid_pdrop: 0.0,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000.0,
  sliding_window: 2047,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 32064,
};

describe('parseConfig', () => {
  it('parses GPT-2 with its defaults (n_inner = 4C, tied head)', () => {
    expect(parseConfig(gpt2)).toEqual({
      modelType: 'gpt2',
      family: 'gpt2',
      vocabSize: 50257,
      hiddenSize: 768,
      numLayers: 12,
      numHeads: 12,
      numKvHeads: 12,
      headDim: 64,
      intermediateSize: 3072,
      maxPositions: 1024,
      norm: 'layernorm',
      normEps: 1e-5,
      activation: 'gelu_new',
      positions: 'learned',
      ropeTheta: 10000,
      attnBias: true,
      attnOutBias: true,
      mlpBias: true,
      tieWordEmbeddings: true,
      torchDtype: 'float32',
      bosTokenId: 50256,
      eosTokenId: 50256,
    });
    expect(parseConfig({ ...gpt2, n_inner: 1000, activation_function: 'gelu_pytorch_tanh', tie_word_embeddings: false })).toMatchObject({
      intermediateSize: 1000,
      activation: 'gelu_new',
      tieWordEmbeddings: false,
    });
  });

  it('parses Llama with GQA, list eos, untied default and no biases', () => {
    expect(parseConfig(llama)).toMatchObject({
      modelType: 'llama',
      family: 'llama',
      numHeads: 32,
      numKvHeads: 8,
      headDim: 128,
      intermediateSize: 11008,
      norm: 'rmsnorm',
      normEps: 1e-5,
      activation: 'silu',
      positions: 'rope',
      ropeTheta: 500000,
      attnBias: false,
      attnOutBias: false,
      mlpBias: false,
      tieWordEmbeddings: false,
      bosTokenId: 1,
      eosTokenId: 2,
    });
    const minimal = { ...llama } as Record<string, unknown>;
    delete minimal.num_key_value_heads;
    delete minimal.rope_theta;
    delete minimal.rms_norm_eps;
    expect(parseConfig(minimal)).toMatchObject({ numKvHeads: 32, ropeTheta: 10000, normEps: 1e-6 });
    expect(parseConfig({ ...llama, attention_bias: true, mlp_bias: true, head_dim: 64, tie_word_embeddings: true })).toMatchObject({
      attnBias: true,
      attnOutBias: true,
      mlpBias: true,
      headDim: 64,
      tieWordEmbeddings: true,
    });
  });

  it('parses Mistral (sliding window when shorter than the context) and Qwen2 (q/k/v bias always on)', () => {
    expect(parseConfig({ ...llama, model_type: 'mistral', max_position_embeddings: 32768, sliding_window: 4096 })).toMatchObject({
      modelType: 'mistral',
      family: 'llama',
      slidingWindow: 4096,
      attnBias: false,
    });
    expect(parseConfig({ ...llama, model_type: 'mistral', sliding_window: null }).slidingWindow).toBeUndefined();
    const qwen = parseConfig({ ...llama, model_type: 'qwen2', use_sliding_window: false, sliding_window: 4096 });
    expect(qwen).toMatchObject({ modelType: 'qwen2', attnBias: true, attnOutBias: false, mlpBias: false, tieWordEmbeddings: false });
    expect(parseConfig({ ...llama, model_type: 'qwen2', tie_word_embeddings: true }).tieWordEmbeddings).toBe(true);
  });

  it('parses Phi-3 (its own table, RMSNorm eps default 1e-5, sliding window as Mistral reads it)', () => {
    expect(parseConfig(phi3)).toEqual({
      modelType: 'phi3',
      family: 'phi3',
      vocabSize: 32064,
      hiddenSize: 3072,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 32,
      headDim: 96,
      intermediateSize: 8192,
      maxPositions: 4096,
      norm: 'rmsnorm',
      normEps: 1e-5,
      activation: 'silu',
      positions: 'rope',
      ropeTheta: 10000,
      attnBias: false,
      attnOutBias: false,
      mlpBias: false,
      tieWordEmbeddings: false,
      slidingWindow: 2047,
      torchDtype: 'bfloat16',
      bosTokenId: 1,
      eosTokenId: 32000,
    });
    const minimal = { ...phi3 } as Record<string, unknown>;
    for (const k of ['rms_norm_eps', 'rope_theta', 'sliding_window', 'num_key_value_heads', 'attention_bias', 'tie_word_embeddings']) delete minimal[k];
    expect(parseConfig(minimal)).toMatchObject({ normEps: 1e-5, ropeTheta: 10000, numKvHeads: 32, tieWordEmbeddings: false });
    expect(parseConfig(minimal).slidingWindow).toBeUndefined();
    expect(parseConfig({ ...phi3, num_key_value_heads: 8, tie_word_embeddings: true, sliding_window: 4096, partial_rotary_factor: 1.0 })).toMatchObject({
      numKvHeads: 8,
      tieWordEmbeddings: true,
    });
    expect(parseConfig({ ...phi3, sliding_window: 4096 }).slidingWindow).toBeUndefined();
  });

  it('refuses what Phi-3 configs may ask for and the engine does not implement, one line naming config.json, the field and the value', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ partial_rotary_factor: 0.5 }, 'partial_rotary_factor 0.5 is not supported for phi3 (only 1: RoPE over the whole head)'],
      [
        { rope_scaling: { type: 'longrope', long_factor: [1], short_factor: [1] }, max_position_embeddings: 131072, original_max_position_embeddings: 4096 },
        "rope_scaling 'longrope' is not supported (supported rope_type: default, linear, dynamic, yarn, llama3)",
      ],
      [{ rope_scaling: { rope_type: 'su' } }, "rope_scaling 'su' is not supported (supported rope_type: default, linear, dynamic, yarn, llama3)"],
      [{ attention_bias: true }, "attention_bias=true is not supported for phi3 (transformers' Phi-3 projections have no bias)"],
      [{ hidden_act: 'gelu_new' }, "hidden_act 'gelu_new' is not supported for phi3 (supported: silu)"],
    ];
    for (const [extra, message] of cases) {
      let error: unknown;
      try {
        parseConfig({ ...phi3, ...extra }, 'phi/config.json');
      } catch (e) {
        error = e;
      }
      expect(error, message).toBeInstanceOf(UnsupportedArchitectureError);
      expect((error as Error).message).toBe(`phi/config.json: ${message}`);
    }
    expect(() => parseConfig({ ...phi3, num_key_value_heads: 5 })).toThrow(ConfigError);
  });

  it('refuses unsupported architectures with the supported list', () => {
    const err = (() => {
      try {
        parseConfig({ model_type: 'bert' }, 'x/config.json');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(UnsupportedArchitectureError);
    expect(err?.message).toBe('x/config.json: model_type "bert" is not supported (supported: gpt2, llama, mistral, qwen2, phi3, qwen3, gemma2, olmo2)');
    expect(() => parseConfig({ ...llama, rope_scaling: { rope_type: 'mrope', factor: 8 } })).toThrow(/rope_scaling 'mrope' is not supported/);
    expect(() => parseConfig({ ...llama, rope_scaling: { type: 'longrope', factor: 2 } })).toThrow(UnsupportedArchitectureError);
    expect(() => parseConfig({ ...llama, hidden_act: 'gelu' })).toThrow(/hidden_act 'gelu'.*silu/);
    expect(() => parseConfig({ ...gpt2, activation_function: 'relu' })).toThrow(UnsupportedArchitectureError);
    expect(() => parseConfig({ ...gpt2, scale_attn_by_inverse_layer_idx: true })).toThrow(UnsupportedArchitectureError);
    expect(() => parseConfig({ ...llama, model_type: 'qwen2', use_sliding_window: true })).toThrow(UnsupportedArchitectureError);
  });

  it('reports missing and inconsistent fields as ConfigError naming the file', () => {
    const cases: [unknown, RegExp][] = [
      [null, /must be a JSON object/],
      [[1], /must be a JSON object/],
      [{}, /missing 'model_type' \(supported: gpt2, llama, mistral, qwen2, phi3, qwen3, gemma2, olmo2\)/],
      [{ ...gpt2, n_embd: undefined }, /missing required field 'n_embd'/],
      [{ ...gpt2, n_head: 7 }, /n_embd 768 is not divisible by n_head 7/],
      [{ ...gpt2, n_layer: 0 }, /'n_layer' must be a positive integer/],
      [{ ...gpt2, vocab_size: '50257' }, /'vocab_size' must be a positive integer/],
      [{ ...gpt2, layer_norm_epsilon: -1 }, /'layer_norm_epsilon' must be a positive number/],
      [{ ...gpt2, eos_token_id: 60000 }, /'eos_token_id' 60000 is outside the vocabulary/],
      [{ ...llama, num_key_value_heads: 5 }, /num_attention_heads 32 is not divisible by num_key_value_heads 5/],
      [{ ...llama, hidden_size: 4000, num_attention_heads: 48, num_key_value_heads: 8 }, /hidden_size 4000 is not divisible by num_attention_heads 48/],
      [{ ...llama, head_dim: 7 }, /head_dim 7 must be even/],
      [{ ...llama, intermediate_size: undefined }, /missing required field 'intermediate_size'/],
      [{ ...llama, max_position_embeddings: undefined }, /missing required field 'max_position_embeddings'/],
      [{ ...llama, tie_word_embeddings: 'yes' }, /'tie_word_embeddings' must be true or false/],
    ];
    for (const [json, pattern] of cases) {
      let error: unknown;
      try {
        parseConfig(json, 'm/config.json');
      } catch (e) {
        error = e;
      }
      expect(error, String(pattern)).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/^m\/config\.json: /);
      expect((error as Error).message).toMatch(pattern);
    }
  });
});
