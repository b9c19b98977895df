import { describe, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32 } from '../model/testutil.ts';
import { residualAdd } from './residual.ts';
import { residualAddRef } from './residual.ref.ts';
import { KernelPass } from './pass.ts';

describe('residual.wgsl', () => {
  it('adds in place over 13*40+3 elements', async () => {
    const seed = freshSeed();
    const next = rng(seed);
    const n = 13 * 40 + 3;
    const x = roundF32(randn(next, n));
    const y = roundF32(randn(next, n));
    const got = await withGpu(async (rt) => {
      const xb = uploadF32(rt, 'x', x);
      const pass = new KernelPass(rt, 'test.residual');
      residualAdd(pass, n, xb, uploadF32(rt, 'y', y));
      pass.submit();
      return rt.readF32(xb);
    });
    checkClose('residual', got, residualAddRef(x, y), 1e-6, 1e-6, seed);
  });
});
