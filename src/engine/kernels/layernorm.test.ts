import { describe, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32, uploadWeight } from '../model/testutil.ts';
import { layerNorm } from './layernorm.ts';
import { layerNormRef } from './layernorm.ref.ts';
import { KernelPass } from './pass.ts';
import type { FloatDType } from '../io/dtypes.ts';

describe('layernorm.wgsl', () => {
  for (const [rows, C, dtype] of [[13, 40, 'F32'], [7, 301, 'F16'], [3, 1000, 'BF16']] as [number, number, FloatDType][]) {
    it(`normalises (${rows}, ${C}) rows with ${dtype} weight and bias`, async () => {
      const seed = freshSeed();
      const next = rng(seed);
      const x = roundF32(randn(next, rows * C, 3).map((v, i) => v + (i % 5)));
      const { got, want } = await withGpu(async (rt) => {
        const w = uploadWeight(rt, 'w', randn(next, C), dtype);
        const b = uploadWeight(rt, 'b', randn(next, C), dtype);
        const y = rt.storage('y', rows * C * 4);
        const pass = new KernelPass(rt, 'test.layernorm');
        layerNorm(pass, { rows, C, eps: 1e-5, x: uploadF32(rt, 'x', x), w: w.ref, b: b.ref, y });
        pass.submit();
        return { got: await rt.readF32(y), want: layerNormRef(x, C, w.values, b.values, 1e-5) };
      });
      checkClose('layernorm', got, want, 1e-5, 1e-4, seed);
    });
  }
});
