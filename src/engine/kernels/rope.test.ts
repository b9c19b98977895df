import { describe, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import type { RopeScaling } from '../io/spec.ts';
import { ropeFrequencies } from '../model/rope.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32 } from '../model/testutil.ts';
import { rope, ropeTable } from './rope.ts';
import { ropeRef } from './rope.ref.ts';
import { KernelPass } from './pass.ts';

describe('rope.wgsl', () => {
  // HS = 16 with θ = 5e5 and an original context of 8192 puts llama3's pairs in all three bands
  // (high, blended, low frequency); yarn scales cos/sin by its attention factor (here 1.139).
  const cases: [string, number, number, RopeScaling | undefined][] = [
    ['plain, HS=10, θ 1e4', 10, 10000, undefined],
    ['llama3 (factor 32, low 1, high 4, original 8192), HS=16, θ 5e5', 16, 500000, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 }],
    ['yarn (factor 4, original 16), HS=16, θ 1e4', 16, 10000, { type: 'yarn', factor: 4, originalMaxPositions: 16, attentionFactor: 0.1 * Math.log(4) + 1, betaFast: 32, betaSlow: 1, truncate: true }],
    ['linear (factor 4), HS=8', 8, 10000, { type: 'linear', factor: 4 }],
    ['dynamic (factor 2) beyond 12 positions, HS=8', 8, 10000, { type: 'dynamic', factor: 2 }],
  ];
  for (const [name, HS, theta, ropeScaling] of cases) {
    it(`rotates q and k heads of a fused qkv buffer in place, B=2, T=13, p0=7: ${name}`, async () => {
      const seed = freshSeed();
      const next = rng(seed);
      // Fused (B*T, (NH + 2 NKV) HS): rotate the NH + NKV = 6 q/k heads, leave v alone.
      const [B, T, NH, NKV, p0] = [2, 13, 4, 2, 7];
      const freqs = ropeFrequencies({ headDim: HS, ropeTheta: theta, ropeScaling, maxPositions: 12 }, p0 + T);
      const ld = (NH + 2 * NKV) * HS;
      const buf = roundF32(randn(next, B * T * ld));
      const got = await withGpu(async (rt) => {
        const b = uploadF32(rt, 'qkv', buf);
        const pass = new KernelPass(rt, 'test.rope');
        const table = rt.upload('rope.table', ropeTable(p0 + T, freqs));
        rope(pass, { rows: B * T, T, p0, ld, off: 0, nheads: NH + NKV, HS, table, buf: b });
        pass.submit();
        return rt.readF32(b);
      });
      const want = buf.slice();
      ropeRef(want, B * T, T, p0, ld, 0, NH + NKV, HS, freqs);
      // The table uses HF's f32 angles pos * inv_freq; the reference uses exact ones (≤ 1 ulp apart).
      checkClose('rope', got, want, 1e-5, 1e-4, seed);
    });
  }
});
