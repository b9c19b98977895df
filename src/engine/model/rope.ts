import type { ModelSpec } from '../io/spec.ts';

/**
 * RoPE's frequencies as transformers' modeling_rope_utils computes them for each rope_type, in
 * float64 (the GPU table rounds them to f32 as transformers does): one inverse frequency per
 * rotated pair j < HS/2, and the factor cos and sin are multiplied by (yarn's attention factor,
 * 1 otherwise). The GPU forward, the float64 reference and the ONNX training graph all take their
 * frequencies from here.
 *
 *   default   inv_j = θ^(-2j/HS)
 *   linear    inv_j / factor
 *   dynamic   θ' = θ · (factor·S/P − (factor − 1))^(HS/(HS−2)) with S = max(sequence length, P),
 *             P = max_position_embeddings: plain RoPE up to P positions, rescaled beyond
 *   llama3    wavelength λ_j = 2π / inv_j against the original context O: λ > O/low → inv_j /
 *             factor; λ < O/high → inv_j; between, s = (O/λ − low)/(high − low) blends
 *             (1 − s)·inv_j/factor + s·inv_j
 *   yarn      ramp r_j = clamp((j − lo)/(hi − lo), 0, 1) between the correction dimensions of
 *             beta_fast and beta_slow rotations over O (floor/ceil when truncate), then
 *             inv_j·(1 − r_j) + inv_j/factor · r_j, and cos/sin × attention factor
 */
export interface RopeFrequencies {
  inv: Float64Array; // (HS/2)
  scale: number;
}

type RopeSpec = Pick<ModelSpec, 'headDim' | 'ropeTheta' | 'ropeScaling' | 'maxPositions'>;

export function ropeFrequencies(spec: RopeSpec, seqLen: number): RopeFrequencies {
  const HS = spec.headDim;
  const half = HS / 2;
  const r = spec.ropeScaling;
  let theta = spec.ropeTheta;
  if (r?.type === 'dynamic') {
    const S = Math.max(seqLen, spec.maxPositions);
    theta *= ((r.factor * S) / spec.maxPositions - (r.factor - 1)) ** (HS / (HS - 2));
  }
  const inv = Float64Array.from({ length: half }, (_, j) => 1 / theta ** ((2 * j) / HS));
  if (r === undefined || r.type === 'dynamic') return { inv, scale: 1 };
  switch (r.type) {
    case 'linear':
      return { inv: inv.map((f) => f / r.factor), scale: 1 };
    case 'llama3': {
      const lowWavelen = r.originalMaxPositions / r.lowFreqFactor;
      const highWavelen = r.originalMaxPositions / r.highFreqFactor;
      return {
        inv: inv.map((f) => {
          const wavelen = (2 * Math.PI) / f;
          if (wavelen > lowWavelen) return f / r.factor;
          if (wavelen < highWavelen) return f;
          const s = (r.originalMaxPositions / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
          return ((1 - s) * f) / r.factor + s * f;
        }),
        scale: 1,
      };
    }
    case 'yarn': {
      // The dimension (of HS) at which a frequency turns `rotations` times over the original context.
      const dim = (rotations: number): number => (HS * Math.log(r.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(spec.ropeTheta));
      let lo = dim(r.betaFast);
      let hi = dim(r.betaSlow);
      if (r.truncate) {
        lo = Math.floor(lo);
        hi = Math.ceil(hi);
      }
      lo = Math.max(lo, 0);
      hi = Math.min(hi, HS - 1);
      if (lo === hi) hi += 0.001;
      return {
        inv: inv.map((f, j) => {
          const ramp = Math.min(1, Math.max(0, (j - lo) / (hi - lo)));
          return (f / r.factor) * ramp + f * (1 - ramp);
        }),
        scale: r.attentionFactor,
      };
    }
  }
}

/**
 * Sequences that share a key share their frequencies: only `dynamic` depends on the length
 * (a sequence of n positions, n > max_position_embeddings, gets its own).
 */
export function ropeKey(spec: RopeSpec, seqLen: number): number {
  return spec.ropeScaling?.type === 'dynamic' ? Math.max(seqLen, spec.maxPositions) : 0;
}
