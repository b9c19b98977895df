import { describe, expect, it } from 'vitest';
import { UnsupportedArchitectureError } from '../errors.ts';
import { planMerge } from '../merge/execute.ts';
import { DEFAULT_METHOD } from '../merge/registry.ts';
import { openCheckpoint } from './checkpoint.ts';
import { checkCompatibility } from './compat.ts';
import { parseConfig } from './config.ts';
import type { DType } from './dtypes.ts';
import { summarise } from './inspect.ts';
import { safetensorsLayout } from './safetensors.ts';
import type { ByteSource, FileSet } from './source.ts';
import { expectedTensors, storedName } from './weights.ts';

/**
 * The families people fine-tune, at their published shapes: each config.json below has the
 * fields of the model's published config (transformers_version and auto_map dropped), and the
 * architecture tables must give exactly the published parameter count. Full-size checkpoints are
 * then opened, inspected, compared and planned from their safetensors headers alone (the data
 * section is never read).
 */
const common = { attention_dropout: 0.0, hidden_act: 'silu', initializer_range: 0.02, use_cache: true };

const REAL: Record<string, { config: Record<string, unknown>; params: number; dtype: DType }> = {
  'SmolLM2-135M': {
    config: {
      ...common, architectures: ['LlamaForCausalLM'], attention_bias: false, bos_token_id: 0, eos_token_id: 0, hidden_size: 576, initializer_range: 0.041666666666666664,
      intermediate_size: 1536, is_llama_config: true, max_position_embeddings: 8192, model_type: 'llama', num_attention_heads: 9, num_hidden_layers: 30,
      num_key_value_heads: 3, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_interleaved: false, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true,
      torch_dtype: 'bfloat16', vocab_size: 49152,
    },
    params: 134_515_008,
    dtype: 'BF16',
  },
  'SmolLM2-360M': {
    config: {
      ...common, architectures: ['LlamaForCausalLM'], attention_bias: false, bos_token_id: 0, eos_token_id: 0, hidden_size: 960, initializer_range: 0.02,
      intermediate_size: 2560, is_llama_config: true, max_position_embeddings: 8192, model_type: 'llama', num_attention_heads: 15, num_hidden_layers: 32,
      num_key_value_heads: 5, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_interleaved: false, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true,
      torch_dtype: 'bfloat16', vocab_size: 49152,
    },
    params: 361_821_120,
    dtype: 'BF16',
  },
  'Qwen2.5-0.5B': {
    config: {
      ...common, architectures: ['Qwen2ForCausalLM'], bos_token_id: 151643, eos_token_id: 151643, hidden_size: 896, intermediate_size: 4864, max_position_embeddings: 32768,
      max_window_layers: 24, model_type: 'qwen2', num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0,
      sliding_window: 32768, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_mrope: false, use_sliding_window: false, vocab_size: 151936,
    },
    params: 494_032_768,
    dtype: 'BF16',
  },
  'Qwen2.5-1.5B': {
    config: {
      ...common, architectures: ['Qwen2ForCausalLM'], bos_token_id: 151643, eos_token_id: 151643, hidden_size: 1536, intermediate_size: 8960, max_position_embeddings: 131072,
      max_window_layers: 28, model_type: 'qwen2', num_attention_heads: 12, num_hidden_layers: 28, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0,
      sliding_window: 131072, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_mrope: false, use_sliding_window: false, vocab_size: 151936,
    },
    params: 1_543_714_304,
    dtype: 'BF16',
  },
  'Qwen3-0.6B': {
    config: {
      ...common, architectures: ['Qwen3ForCausalLM'], attention_bias: false, bos_token_id: 151643, eos_token_id: 151645, head_dim: 128, hidden_size: 1024,
      intermediate_size: 3072, max_position_embeddings: 40960, max_window_layers: 28, model_type: 'qwen3', num_attention_heads: 16, num_hidden_layers: 28,
      num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 1000000, sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16',
      use_sliding_window: false, vocab_size: 151936,
    },
    params: 596_049_920,
    dtype: 'BF16',
  },
  'Llama-3.2-1B': {
    config: {
      ...common, architectures: ['LlamaForCausalLM'], attention_bias: false, bos_token_id: 128000, eos_token_id: 128001, head_dim: 64, hidden_size: 2048,
      intermediate_size: 8192, max_position_embeddings: 131072, mlp_bias: false, model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 16,
      num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5,
      rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
      rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: 'bfloat16', vocab_size: 128256,
    },
    params: 1_235_814_400,
    dtype: 'BF16',
  },
  'Llama-3.1-8B': {
    config: {
      ...common, architectures: ['LlamaForCausalLM'], attention_bias: false, bos_token_id: 128000, eos_token_id: 128001, hidden_size: 4096, intermediate_size: 14336,
      max_position_embeddings: 131072, mlp_bias: false, model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, pretraining_tp: 1,
      rms_norm_eps: 1e-5, rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
      rope_theta: 500000.0, tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 128256,
    },
    params: 8_030_261_248,
    dtype: 'BF16',
  },
  'Mistral-7B-v0.1': {
    config: {
      ...common, architectures: ['MistralForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_size: 4096, intermediate_size: 14336, max_position_embeddings: 32768,
      model_type: 'mistral', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 10000.0, sliding_window: 4096,
      tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 32000,
    },
    params: 7_241_732_096,
    dtype: 'BF16',
  },
  'Gemma-2-2B': {
    config: {
      architectures: ['Gemma2ForCausalLM'], attention_bias: false, attention_dropout: 0.0, attn_logit_softcapping: 50.0, bos_token_id: 2, cache_implementation: 'hybrid',
      eos_token_id: [1, 107], final_logit_softcapping: 30.0, head_dim: 256, hidden_act: 'gelu_pytorch_tanh', hidden_activation: 'gelu_pytorch_tanh', hidden_size: 2304,
      initializer_range: 0.02, intermediate_size: 9216, max_position_embeddings: 8192, model_type: 'gemma2', num_attention_heads: 8, num_hidden_layers: 26,
      num_key_value_heads: 4, pad_token_id: 0, query_pre_attn_scalar: 256, rms_norm_eps: 1e-6, rope_theta: 10000.0, sliding_window: 4096, torch_dtype: 'float32',
      use_cache: true, vocab_size: 256000,
    },
    params: 2_614_341_888,
    dtype: 'F32',
  },
  'Phi-3-mini-4k': {
    config: {
      ...common, architectures: ['Phi3ForCausalLM'], attention_bias: false, bos_token_id: 1, embd_pdrop: 0.0, eos_token_id: 32000, hidden_size: 3072,
      intermediate_size: 8192, max_position_embeddings: 4096, model_type: 'phi3', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 32,
      original_max_position_embeddings: 4096, pad_token_id: 32000, resid_pdrop: 0.0, rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000.0, sliding_window: 2047,
      tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 32064,
    },
    params: 3_821_079_552,
    dtype: 'BF16',
  },
  'OLMo-2-1B': {
    config: {
      ...common, architectures: ['Olmo2ForCausalLM'], attention_bias: false, eos_token_id: 100257, hidden_size: 2048, intermediate_size: 8192, max_position_embeddings: 4096,
      model_type: 'olmo2', num_attention_heads: 16, num_hidden_layers: 16, num_key_value_heads: 16, pad_token_id: 100277, rms_norm_eps: 1e-6, rope_scaling: null,
      rope_theta: 500000, tie_word_embeddings: false, torch_dtype: 'float32', vocab_size: 100352,
    },
    params: 1_484_916_736,
    dtype: 'F32',
  },
};

/** A safetensors file of the spec's tensors whose data section reads as zeros: only the header is real. */
function headerOnlyCheckpoint(config: Record<string, unknown>, dtype: DType): FileSet {
  const spec = parseConfig(config);
  const tensors = expectedTensors(spec).filter((t) => t.kind === 'param' && !t.optional);
  const layout = safetensorsLayout(tensors.map((t) => ({ name: storedName(spec.family, t.name), dtype, shape: t.shape })), { format: 'pt' });
  const weights: ByteSource = {
    name: 'model.safetensors',
    size: layout.totalSize,
    async read(offset, length) {
      if (offset < 0 || offset + length > this.size) throw new RangeError('read outside the file');
      if (offset + length > layout.header.byteLength) throw new Error('the data section is never read');
      return layout.header.subarray(offset, offset + length);
    },
  };
  const json = new TextEncoder().encode(JSON.stringify(config));
  const cfg: ByteSource = { name: 'config.json', size: json.byteLength, read: async (o, n) => json.subarray(o, o + n) };
  return new Map([['config.json', cfg], ['model.safetensors', weights]]);
}

describe('published configs of the families people fine-tune', () => {
  for (const [name, { config, params, dtype }] of Object.entries(REAL)) {
    it(`${name}: parses, and the table gives the published ${params.toLocaleString('en')} parameters; opened and planned from headers alone`, async () => {
      const spec = parseConfig(config);
      const count = expectedTensors(spec)
        .filter((t) => t.kind === 'param' && !t.optional)
        .reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
      expect(count).toBe(params);
      const base = await openCheckpoint(headerOnlyCheckpoint(config, dtype), name);
      const summary = summarise(base);
      expect(summary.parameterCount).toBe(params);
      expect(summary.totalBytes).toBe(params * (dtype === 'F32' ? 4 : 2));
      // A fine-tune of the same shape merges with it: nothing to report, every param planned.
      const ft = await openCheckpoint(headerOnlyCheckpoint(config, dtype), `${name}-ft`);
      expect(checkCompatibility(base, [ft]).items).toEqual([]);
      const plan = planMerge({ recipe: { version: 1, method: DEFAULT_METHOD, base: 'base', models: [{ model: 'ft', parameters: { weight: 1 } }], parameters: {} }, base, models: [ft] });
      expect(plan.filter((t) => t.merged).reduce((n, t) => n + t.byteLength, 0)).toBe(summary.totalBytes);
    });
  }

  it('inspect names what sets each family apart', async () => {
    const features = async (name: string): Promise<string[] | undefined> => summarise(await openCheckpoint(headerOnlyCheckpoint(REAL[name]!.config, REAL[name]!.dtype), name)).features;
    expect(await features('Gemma-2-2B')).toEqual([
      'norms before and after attention and MLP', 'RMSNorm scale (1 + w)', 'embeddings × 48', 'GeGLU (tanh GELU)', 'attention scale 0.0625',
      'attention soft cap 50', 'final logit soft cap 30', 'sliding window 4096 on 13 of 26 layers',
    ]);
    expect(await features('Llama-3.2-1B')).toEqual(['RoPE llama3 scaling (factor 32, low 1, high 4, original 8192 positions)']);
    expect(await features('Qwen3-0.6B')).toEqual(['q/k RMSNorm per head']);
    expect(await features('OLMo-2-1B')).toEqual(['q/k RMSNorm over the projection', 'norms after attention and MLP only']);
    expect(await features('Phi-3-mini-4k')).toEqual(['fused projections (qkv, gate_up)', 'sliding window 2047']);
    expect(await features('SmolLM2-135M')).toBeUndefined();
  });

  it('reads what distinguishes each family', () => {
    expect(parseConfig(REAL['Llama-3.2-1B']!.config)).toMatchObject({
      family: 'llama', headDim: 64, tieWordEmbeddings: true, ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    });
    expect(parseConfig(REAL['Llama-3.1-8B']!.config)).toMatchObject({ tieWordEmbeddings: false, ropeScaling: { type: 'llama3', factor: 8 } });
    expect(parseConfig(REAL['SmolLM2-135M']!.config)).toMatchObject({ family: 'llama', ropeTheta: 100000, normEps: 1e-5, numKvHeads: 3, tieWordEmbeddings: true });
    expect(parseConfig(REAL['Qwen2.5-0.5B']!.config)).toMatchObject({ family: 'llama', attnBias: true, attnOutBias: false, normEps: 1e-6 });
    const qwen3 = parseConfig(REAL['Qwen3-0.6B']!.config);
    expect(qwen3).toMatchObject({ family: 'qwen3', headDim: 128, hiddenSize: 1024, numHeads: 16, qkNorm: 'head', attnBias: false });
    expect(qwen3.numHeads * qwen3.headDim).not.toBe(qwen3.hiddenSize);
    expect(parseConfig(REAL['Gemma-2-2B']!.config)).toEqual({
      modelType: 'gemma2', family: 'gemma2', vocabSize: 256000, hiddenSize: 2304, numLayers: 26, numHeads: 8, numKvHeads: 4, headDim: 256, intermediateSize: 9216,
      maxPositions: 8192, norm: 'rmsnorm', normEps: 1e-6, activation: 'gelu_new', positions: 'rope', ropeTheta: 10000, attnBias: false, attnOutBias: false,
      mlpBias: false, tieWordEmbeddings: true, normPlusOne: true, embedScale: 48, attnScale: 1 / 16, attnSoftcap: 50, finalSoftcap: 30, slidingWindow: 4096,
      slidingLayers: Array.from({ length: 26 }, (_, i) => i % 2 === 0), torchDtype: 'float32', bosTokenId: 2, eosTokenId: 1,
    });
    expect(parseConfig(REAL['OLMo-2-1B']!.config)).toMatchObject({ family: 'olmo2', qkNorm: 'projection', normEps: 1e-6, tieWordEmbeddings: false, ropeTheta: 500000 });
    expect(parseConfig(REAL['Phi-3-mini-4k']!.config)).toMatchObject({ family: 'phi3', slidingWindow: 2047 });
    expect(parseConfig(REAL['Mistral-7B-v0.1']!.config)).toMatchObject({ family: 'llama', slidingWindow: 4096 });
  });

  it("reads transformers 5's rope_parameters like rope_theta + rope_scaling, and Gemma 2's layer_types and null caps", () => {
    const { rope_scaling: scaling, rope_theta: theta, ...rest } = REAL['Llama-3.2-1B']!.config as { rope_scaling: object; rope_theta: number };
    expect(parseConfig({ ...rest, rope_parameters: { ...scaling, rope_theta: theta } })).toEqual(parseConfig(REAL['Llama-3.2-1B']!.config));
    expect(parseConfig({ ...rest, rope_parameters: { rope_type: 'default', rope_theta: 250000 } })).toMatchObject({ ropeTheta: 250000 });
    expect(parseConfig({ ...rest, rope_parameters: { rope_type: 'default', rope_theta: 250000 } }).ropeScaling).toBeUndefined();
    const gemma = REAL['Gemma-2-2B']!.config;
    const types = Array.from({ length: 26 }, (_, i) => (i < 13 ? 'full_attention' : 'sliding_attention'));
    expect(parseConfig({ ...gemma, layer_types: types }).slidingLayers).toEqual(types.map((t) => t === 'sliding_attention'));
    const plain = parseConfig({ ...gemma, attn_logit_softcapping: null, final_logit_softcapping: null, sliding_window: null });
    expect([plain.attnSoftcap, plain.finalSoftcap, plain.slidingWindow, plain.slidingLayers]).toEqual([undefined, undefined, undefined, undefined]);
    // Defaults as Gemma2Config and Qwen3Config have them when a field is absent.
    const { head_dim: _h, query_pre_attn_scalar: _q, ...bare } = gemma as Record<string, unknown>;
    expect(parseConfig(bare)).toMatchObject({ headDim: 256, attnScale: 1 / 16 });
    const { head_dim: _q3, ...qwen3 } = REAL['Qwen3-0.6B']!.config as Record<string, unknown>;
    expect(parseConfig(qwen3).headDim).toBe(128);
    // yarn with a top-level original_max_position_embeddings (Phi-3's place) and its defaults.
    const phi3 = REAL['Phi-3-mini-4k']!.config;
    expect(parseConfig({ ...phi3, max_position_embeddings: 16384, rope_scaling: { rope_type: 'yarn' } }).ropeScaling).toEqual({
      type: 'yarn', factor: 4, originalMaxPositions: 4096, attentionFactor: 0.1 * Math.log(4) + 1, betaFast: 32, betaSlow: 1, truncate: true,
    });
    expect(parseConfig({ ...phi3, rope_scaling: { rope_type: 'yarn', factor: 8, mscale: 0.707, mscale_all_dim: 0.707, beta_fast: 16 } }).ropeScaling).toMatchObject({ factor: 8, attentionFactor: 1, betaFast: 16 });
  });

  it('refuses what is still unsupported in one line naming config.json, the field and the value', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...REAL['Llama-3.2-1B']!.config, rope_scaling: { rope_type: 'longrope', long_factor: [1], short_factor: [1] } }, "rope_scaling 'longrope' is not supported (supported rope_type: default, linear, dynamic, yarn, llama3)"],
      [{ ...REAL['Qwen3-0.6B']!.config, rope_parameters: { full_attention: { rope_type: 'default' }, sliding_attention: { rope_type: 'default' } } }, "rope_parameters per layer type ('full_attention', 'sliding_attention') is not supported (one RoPE for every layer only)"],
      [{ ...REAL['Qwen3-0.6B']!.config, use_sliding_window: true }, 'qwen3 use_sliding_window=true is not supported'],
      [{ ...REAL['Gemma-2-2B']!.config, hidden_activation: 'gelu' }, "hidden_activation 'gelu' is not supported for gemma2 (supported: gelu_pytorch_tanh)"],
      [{ ...REAL['Gemma-2-2B']!.config, use_bidirectional_attention: true }, 'use_bidirectional_attention=true is not supported for gemma2 (causal attention only)'],
      [{ ...REAL['OLMo-2-1B']!.config, hidden_act: 'gelu' }, "hidden_act 'gelu' is not supported for olmo2 (supported: silu)"],
      [{ ...REAL['Llama-3.2-1B']!.config, partial_rotary_factor: 0.5 }, 'partial_rotary_factor 0.5 is not supported for llama (only 1: RoPE over the whole head)'],
      [{ ...REAL['Gemma-2-2B']!.config, model_type: 'gemma3' }, 'model_type "gemma3" is not supported (supported: gpt2, llama, mistral, qwen2, phi3, qwen3, gemma2, olmo2)'],
    ];
    for (const [json, message] of cases) {
      let error: unknown;
      try {
        parseConfig(json, 'm/config.json');
      } catch (e) {
        error = e;
      }
      expect(error, message).toBeInstanceOf(UnsupportedArchitectureError);
      expect((error as Error).message).toBe(`m/config.json: ${message}`);
    }
  });
});
