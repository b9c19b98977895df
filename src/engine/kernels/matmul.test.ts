import { describe, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32, uploadWeight } from '../model/testutil.ts';
import { matmul, type WeightLayout } from './matmul.ts';
import { matmulRef } from './matmul.ref.ts';
import { KernelPass } from './pass.ts';
import type { FloatDType } from '../io/dtypes.ts';

describe('matmul.wgsl', () => {
  const cases: [WeightLayout, FloatDType, boolean][] = [
    ['linear', 'F32', true],
    ['linear', 'F16', false],
    ['linear', 'BF16', true],
    ['conv1d', 'F32', true],
    ['conv1d', 'F16', true],
    ['conv1d', 'BF16', false],
  ];
  for (const [layout, dtype, withBias] of cases) {
    it(`y = x·Wᵀ${withBias ? ' + b' : ''}, ${layout} ${dtype} W, (M, K, N) = (13, 41, 67) into a column block`, async () => {
      const seed = freshSeed();
      const next = rng(seed);
      const [M, K, N, n0, NW, ldy, yoff] = [13, 41, 67, 5, 75, 80, 9];
      const x = roundF32(randn(next, M * K));
      const { got, want } = await withGpu(async (rt) => {
        const w = uploadWeight(rt, 'w', randn(next, NW * K, 0.2), dtype);
        const b = uploadWeight(rt, 'b', randn(next, NW), dtype);
        const y = uploadF32(rt, 'y', new Float32Array(M * ldy).fill(7));
        const pass = new KernelPass(rt, 'test.matmul');
        matmul(pass, { M, N, K, x: uploadF32(rt, 'x', x), w: w.ref, layout, NW, n0, bias: withBias ? b.ref : undefined, y, ldy, yoff });
        pass.submit();
        const full = await rt.readF32(y);
        const block = new Float64Array(M * N);
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) block[m * N + n] = full[m * ldy + yoff + n]!;
        // Columns outside the block must be untouched.
        for (let m = 0; m < M; m++) for (let c = 0; c < ldy; c++) if ((c < yoff || c >= yoff + N) && full[m * ldy + c] !== 7) throw new Error(`matmul wrote outside its block at (${m}, ${c})`);
        return { got: block, want: matmulRef(x, M, K, w.values, layout, N, withBias ? b.values : undefined, n0, NW) };
      });
      checkClose('matmul', got, want, 1e-5, 1e-4, seed);
    });
  }

  // Even K, n0 and NW: 16-bit weights come as whole words; M and N span several tiles, K several steps.
  it.each([['linear', 'BF16'], ['conv1d', 'F16']] as [WeightLayout, FloatDType][])('(M, K, N) = (70, 96, 131), %s %s W read in word pairs, n0 = 6', async (layout, dtype) => {
    const seed = freshSeed();
    const next = rng(seed);
    const [M, K, N, n0, NW] = [70, 96, 131, 6, 140];
    const x = roundF32(randn(next, M * K));
    const { got, want } = await withGpu(async (rt) => {
      const w = uploadWeight(rt, 'w', randn(next, NW * K, 0.2), dtype);
      const b = uploadWeight(rt, 'b', randn(next, NW), dtype);
      const y = rt.storage('y', M * N * 4);
      const pass = new KernelPass(rt, 'test.matmul.pairs');
      matmul(pass, { M, N, K, x: uploadF32(rt, 'x', x), w: w.ref, layout, NW, n0, bias: b.ref, y });
      pass.submit();
      return { got: await rt.readF32(y), want: matmulRef(x, M, K, w.values, layout, N, b.values, n0, NW) };
    });
    checkClose('matmul', got, want, 1e-5, 1e-4, seed);
  });

  it('reads x rows with a stride and offset (last-position path), M=1, K=130, N=301', async () => {
    const seed = freshSeed();
    const next = rng(seed);
    const [K, N, rows] = [130, 301, 3];
    const x = roundF32(randn(next, rows * K));
    const { got, want } = await withGpu(async (rt) => {
      const w = uploadWeight(rt, 'w', randn(next, N * K, 0.2), 'F32');
      const y = rt.storage('y', N * 4);
      const pass = new KernelPass(rt, 'test.matmul.row');
      matmul(pass, { M: 1, N, K, x: uploadF32(rt, 'x', x), xoff: 2 * K, w: w.ref, layout: 'linear', y });
      pass.submit();
      return { got: await rt.readF32(y), want: matmulRef(x.slice(2 * K), 1, K, w.values, 'linear', N) };
    });
    checkClose('matmul row', got, want, 1e-5, 1e-4, seed);
  });
});
