import { describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from './checkpoint.ts';
import { parseConfig } from './config.ts';
import { dtypeSize, type DType } from './dtypes.ts';
import { checkCompatibility } from './compat.ts';
import { writeSafetensors } from './safetensors.ts';
import { bytesSource } from './source.ts';
import { expectedTensors } from './weights.ts';

const gpt2Config = { model_type: 'gpt2', vocab_size: 11, n_embd: 4, n_layer: 2, n_head: 2, n_positions: 5 };
const llamaConfig = {
  model_type: 'llama',
  vocab_size: 11,
  hidden_size: 4,
  intermediate_size: 8,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 5,
};

/** A checkpoint holding every non-optional tensor of its config (plus `extra`), data filled with a pattern. */
async function build(
  name: string,
  config: Record<string, unknown>,
  options: { dtype?: (tensor: string) => DType; drop?: string[]; extra?: { name: string; shape: number[]; dtype?: DType }[]; buffers?: boolean } = {},
): Promise<Checkpoint> {
  const spec = parseConfig(config);
  const rows = expectedTensors(spec)
    .filter((t) => (!t.optional || (options.buffers && t.kind === 'buffer')) && !options.drop?.includes(t.name))
    .map((t) => ({ name: t.name, shape: t.shape, dtype: options.dtype?.(t.name) ?? ('F32' as DType) }));
  rows.push(...(options.extra ?? []).map((e) => ({ ...e, dtype: e.dtype ?? ('F32' as DType) })));
  const entries = rows.map((r) => {
    const bytes = r.shape.reduce((a, b) => a * b, 1) * dtypeSize(r.dtype);
    return { ...r, data: Uint8Array.from({ length: bytes }, (_, i) => (i * 37 + 11) % 251) };
  });
  const files = new Map([
    ['config.json', bytesSource(new TextEncoder().encode(JSON.stringify(config)), 'config.json')],
    ['model.safetensors', bytesSource(writeSafetensors(entries), 'model.safetensors')],
  ]);
  return openCheckpoint(files, name);
}

describe('checkCompatibility', () => {
  it('accepts identical layouts', async () => {
    const base = await build('base', gpt2Config, { buffers: true });
    const report = checkCompatibility(base, [await build('a', gpt2Config, { buffers: true }), await build('b', gpt2Config, { buffers: true })]);
    expect(report).toEqual({ ok: true, base: 'base', items: [] });
  });

  it('lists every mismatch of every checkpoint in one report', async () => {
    const base = await build('base', gpt2Config, { buffers: true, extra: [{ name: 'score.weight', shape: [2, 4] }] });
    const dtypes = await build('halves', gpt2Config, {
      buffers: true,
      dtype: (t) => (t.startsWith('h.1.') ? 'F16' : 'F32'),
      drop: ['h.0.attn.bias', 'h.0.attn.masked_bias'],
      extra: [{ name: 'score.weight', shape: [3, 4] }, { name: 'h.0.attn.rotary', shape: [2] }],
    });
    const wider = await build('wider', { ...gpt2Config, n_inner: 8, layer_norm_epsilon: 1e-6 }, { buffers: true, extra: [{ name: 'score.weight', shape: [2, 4] }] });
    const llama = await build('llama', llamaConfig);
    const report = checkCompatibility(base, [dtypes, wider, llama]);
    expect(report.ok).toBe(false);
    const summary = report.items.map((i) => `${i.checkpoint} ${i.severity} ${i.kind} ${i.tensor ?? ''}`.trim());

    // 'halves': dtype warnings (12 params + 2 buffers of layer 1), missing buffers (warnings), unknown shape mismatch and an extra unknown (error/warning).
    expect(summary.filter((s) => s.startsWith('halves warning dtype'))).toHaveLength(14);
    expect(summary).toContain('halves warning missing-tensor h.0.attn.bias');
    expect(summary).toContain('halves warning missing-tensor h.0.attn.masked_bias');
    expect(summary).toContain('halves error shape score.weight');
    expect(summary).toContain('halves warning extra-tensor h.0.attn.rotary');
    expect(report.items.find((i) => i.kind === 'dtype')?.message).toBe("dtype F16 differs from base 'base' F32 (merged in f32, written as the output dtype)");

    // 'wider': the spec field and both affected tensor shapes per layer, plus a warning for eps.
    expect(summary).toContain('wider error spec');
    expect(report.items.find((i) => i.checkpoint === 'wider' && i.severity === 'error' && i.kind === 'spec')?.message).toBe("intermediateSize is 8, base 'base' has 16");
    expect(report.items.find((i) => i.checkpoint === 'wider' && i.kind === 'spec' && i.severity === 'warning')?.message).toMatch(/^normEps is 0\.000001/);
    for (const l of [0, 1]) {
      expect(summary).toContain(`wider error shape h.${l}.mlp.c_fc.weight`);
      expect(summary).toContain(`wider error shape h.${l}.mlp.c_fc.bias`);
      expect(summary).toContain(`wider error shape h.${l}.mlp.c_proj.weight`);
    }
    expect(report.items.find((i) => i.tensor === 'h.0.mlp.c_fc.weight')?.message).toBe("shape [4, 8] differs from base 'base' [4, 16]");

    // 'llama': architecture, spec, every base tensor missing and every llama tensor extra.
    expect(summary).toContain('llama error architecture');
    expect(report.items.find((i) => i.kind === 'architecture')?.message).toBe("model_type llama (llama family) differs from base 'base' model_type gpt2 (gpt2 family)");
    expect(summary).toContain('llama error missing-tensor wte.weight');
    expect(summary).toContain('llama error extra-tensor model.embed_tokens.weight');
    // 28 GPT-2 params are errors; its 4 buffers and the unknown score.weight only warnings.
    expect(summary.filter((s) => s.startsWith('llama error missing-tensor'))).toHaveLength(28);
    expect(summary.filter((s) => s.startsWith('llama warning missing-tensor'))).toHaveLength(5);
    expect(new Set(report.items.map((i) => i.checkpoint))).toEqual(new Set(['halves', 'wider', 'llama']));
  });

  it('Phi-3 against a Llama of the same shapes: the family differs and every fused or split projection is missing or extra', async () => {
    const phi3Config = { ...llamaConfig, model_type: 'phi3' };
    const base = await build('phi3', phi3Config);
    const report = checkCompatibility(base, [await build('phi3-ft', phi3Config), await build('llama', llamaConfig)]);
    expect(report.ok).toBe(false);
    expect(report.items.filter((i) => i.checkpoint === 'phi3-ft')).toEqual([]);
    const summary = report.items.map((i) => `${i.checkpoint} ${i.severity} ${i.kind} ${i.tensor ?? ''}`.trim());
    expect(report.items.find((i) => i.kind === 'architecture')?.message).toBe("model_type llama (llama family) differs from base 'phi3' model_type phi3 (phi3 family)");
    for (const l of [0, 1]) {
      for (const t of ['self_attn.qkv_proj', 'mlp.gate_up_proj']) expect(summary).toContain(`llama error missing-tensor model.layers.${l}.${t}.weight`);
      for (const t of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'mlp.gate_proj', 'mlp.up_proj']) expect(summary).toContain(`llama error extra-tensor model.layers.${l}.${t}.weight`);
    }
    expect(summary.filter((s) => s.includes('-tensor'))).toHaveLength(2 * (2 + 5));
  });

  it('dtype-only differences are warnings: the merge is still allowed', async () => {
    const base = await build('bf16', llamaConfig, { dtype: () => 'BF16' });
    const report = checkCompatibility(base, [await build('f32', llamaConfig)]);
    expect(report.ok).toBe(true);
    expect(report.items.every((i) => i.kind === 'dtype' && i.severity === 'warning')).toBe(true);
    expect(report.items).toHaveLength(base.tensors.size);
  });

  it('lists RoPE scaling, soft caps and windows that differ as warnings, and q/k norms or (1 + w) norms as errors', async () => {
    const llama3 = { ...llamaConfig, rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 4 } };
    const base = await build('base', llama3);
    const plain = await build('plain', llamaConfig);
    const linear = await build('linear', { ...llamaConfig, rope_scaling: { type: 'linear', factor: 2 } });
    const report = checkCompatibility(base, [plain, linear]);
    expect(report.ok).toBe(true);
    expect(report.items.map((i) => [i.checkpoint, i.severity, i.message])).toEqual([
      ['plain', 'warning', `ropeScaling is undefined, base 'base' has {"type":"llama3","factor":32,"lowFreqFactor":1,"highFreqFactor":4,"originalMaxPositions":4}`],
      ['linear', 'warning', `ropeScaling is {"type":"linear","factor":2}, base 'base' has {"type":"llama3","factor":32,"lowFreqFactor":1,"highFreqFactor":4,"originalMaxPositions":4}`],
    ]);
    const gemma = { ...llamaConfig, model_type: 'gemma2', head_dim: 2, hidden_activation: 'gelu_pytorch_tanh', num_hidden_layers: 2 };
    const g = await build('gemma', gemma);
    const capped = checkCompatibility(g, [await build('capped', { ...gemma, final_logit_softcapping: 10, sliding_window: 3, layer_types: ['full_attention', 'sliding_attention'] })]);
    expect(capped.items.map((i) => `${i.severity} ${i.message}`).sort()).toEqual([
      "warning finalSoftcap is 10, base 'gemma' has 30",
      "warning slidingLayers is [false,true], base 'gemma' has [true,false]",
      "warning slidingWindow is 3, base 'gemma' has 4096",
    ]);
    const qwen3 = checkCompatibility(await build('q3', { ...llamaConfig, model_type: 'qwen3', head_dim: 2 }), [await build('q2', { ...llamaConfig, model_type: 'qwen2' })]);
    expect(qwen3.ok).toBe(false);
    expect(qwen3.items.map((i) => i.message)).toContain("qkNorm is undefined, base 'q3' has head");
  });
});
