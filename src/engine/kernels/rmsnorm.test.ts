import { describe, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32, uploadWeight } from '../model/testutil.ts';
import { rmsNorm } from './rmsnorm.ts';
import { rmsNormRef } from './rmsnorm.ref.ts';
import { KernelPass } from './pass.ts';
import type { FloatDType } from '../io/dtypes.ts';

describe('rmsnorm.wgsl', () => {
  for (const [rows, C, dtype, plusOne] of [[13, 40, 'F32', false], [5, 333, 'F16', false], [2, 700, 'BF16', false], [7, 96, 'BF16', true]] as [number, number, FloatDType, boolean][]) {
    it(`normalises (${rows}, ${C}) rows with a ${dtype} weight${plusOne ? ', scaled by (1 + w) as Gemma does' : ''}`, async () => {
      const seed = freshSeed();
      const next = rng(seed);
      const x = roundF32(randn(next, rows * C, 2).map((v, i) => v + (i % 3)));
      const { got, want } = await withGpu(async (rt) => {
        const w = uploadWeight(rt, 'w', randn(next, C), dtype);
        const y = rt.storage('y', rows * C * 4);
        const pass = new KernelPass(rt, 'test.rmsnorm');
        rmsNorm(pass, { rows, C, eps: 1e-6, x: uploadF32(rt, 'x', x), w: w.ref, y, plusOne });
        pass.submit();
        return { got: await rt.readF32(y), want: rmsNormRef(x, C, w.values, 1e-6, plusOne) };
      });
      checkClose('rmsnorm', got, want, 1e-5, 1e-4, seed);
    });
  }
});
