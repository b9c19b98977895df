import { describe, expect, it } from 'vitest';
import { parseConfig } from '../io/config.ts';
import { ropeFrequencies, ropeKey } from './rope.ts';

/**
 * The frequency formulas against properties transformers' definitions imply (the whole-model
 * numbers are checked against the independent PyTorch reference, scripts/reference_ppl.py).
 */
const llama32 = {
  model_type: 'llama', vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32,
  num_key_value_heads: 8, head_dim: 64, max_position_embeddings: 131072, rope_theta: 500000.0, hidden_act: 'silu',
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
};

describe('ropeFrequencies', () => {
  it('llama3 (Llama 3.2): high frequencies kept, low ones divided by the factor, a smooth blend between', () => {
    const spec = parseConfig(llama32);
    const plain = ropeFrequencies({ ...spec, ropeScaling: undefined }, 10).inv;
    const { inv, scale } = ropeFrequencies(spec, 10);
    expect(scale).toBe(1);
    const ratio = Array.from(inv, (f, j) => plain[j]! / f);
    const wavelen = Array.from(plain, (f) => (2 * Math.PI) / f);
    ratio.forEach((r, j) => {
      if (wavelen[j]! < 8192 / 4) expect(r).toBe(1);
      else if (wavelen[j]! > 8192) expect(r).toBeCloseTo(32, 12);
      else {
        expect(r).toBeGreaterThan(1);
        expect(r).toBeLessThan(32);
      }
    });
    // All three bands occur at HS = 64, and the blend is continuous at both band edges.
    expect(ratio.filter((r) => r === 1).length).toBeGreaterThan(0);
    expect(ratio.filter((r) => Math.abs(r - 32) < 1e-9).length).toBeGreaterThan(0);
    const s = (j: number): number => (8192 / wavelen[j]! - 1) / 3;
    ratio.forEach((r, j) => {
      if (wavelen[j]! >= 2048 && wavelen[j]! <= 8192) expect(1 / r).toBeCloseTo((1 - s(j)) / 32 + s(j), 12);
    });
  });

  it('linear divides every frequency; dynamic is plain RoPE up to max_position_embeddings and rescales the base beyond', () => {
    const base = { headDim: 8, ropeTheta: 10000, maxPositions: 32 };
    const plain = ropeFrequencies(base, 20).inv;
    expect(Array.from(ropeFrequencies({ ...base, ropeScaling: { type: 'linear', factor: 4 } }, 20).inv)).toEqual(Array.from(plain, (f) => f / 4));
    const dynamic = { ...base, ropeScaling: { type: 'dynamic', factor: 2 } as const };
    expect(Array.from(ropeFrequencies(dynamic, 32).inv)).toEqual(Array.from(plain));
    // S = 48: θ' = θ·(2·48/32 − 1)^(8/6) = θ·2^(4/3).
    const theta2 = 10000 * 2 ** (4 / 3);
    const longer = ropeFrequencies(dynamic, 48).inv;
    longer.forEach((f, j) => expect(f).toBeCloseTo(1 / theta2 ** ((2 * j) / 8), 15));
    expect([ropeKey(dynamic, 20), ropeKey(dynamic, 32), ropeKey(dynamic, 48), ropeKey(base, 48)]).toEqual([32, 32, 48, 0]);
  });

  it('yarn (Qwen2.5 long-context config): extrapolated high frequencies, interpolated low ones, attention factor 0.1·ln(factor) + 1', () => {
    const spec = parseConfig({
      model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14,
      num_key_value_heads: 2, max_position_embeddings: 32768, rope_theta: 1000000.0, hidden_act: 'silu',
      rope_scaling: { factor: 4.0, original_max_position_embeddings: 32768, type: 'yarn' },
    });
    expect(spec.ropeScaling).toEqual({ type: 'yarn', factor: 4, originalMaxPositions: 32768, attentionFactor: 0.1 * Math.log(4) + 1, betaFast: 32, betaSlow: 1, truncate: true });
    const plain = ropeFrequencies({ ...spec, ropeScaling: undefined }, 1).inv;
    const { inv, scale } = ropeFrequencies(spec, 1);
    expect(scale).toBeCloseTo(1.138629436, 9);
    // Correction dimensions: HS·ln(O / (β·2π)) / (2 ln θ), floored / ceiled.
    const dim = (beta: number): number => (64 * Math.log(32768 / (beta * 2 * Math.PI))) / (2 * Math.log(1e6));
    const lo = Math.floor(dim(32));
    const hi = Math.ceil(dim(1));
    inv.forEach((f, j) => {
      if (j <= lo) expect(f).toBe(plain[j]);
      else if (j >= hi) expect(f).toBeCloseTo(plain[j]! / 4, 18);
      else expect(f).toBeCloseTo(plain[j]! * (1 - (j - lo) / (hi - lo)) + (plain[j]! / 4) * ((j - lo) / (hi - lo)), 18);
    });
  });
});
