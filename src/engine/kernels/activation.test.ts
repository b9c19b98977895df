import { describe, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32 } from '../model/testutil.ts';
import { geluMul, geluNew, siluMul } from './activation.ts';
import { geluMulRef, geluNewRef, siluMulRef } from './activation.ref.ts';
import { KernelPass } from './pass.ts';

describe('activation.wgsl', () => {
  it('gelu_new (tanh form) over 13*37 elements, including large |x|', async () => {
    const seed = freshSeed();
    const next = rng(seed);
    const n = 13 * 37;
    const x = roundF32(randn(next, n, 3));
    x[0] = 40;
    x[1] = -40;
    const got = await withGpu(async (rt) => {
      const a = uploadF32(rt, 'a', x);
      const pass = new KernelPass(rt, 'test.gelu');
      geluNew(pass, n, a);
      pass.submit();
      return rt.readF32(a);
    });
    checkClose('gelu_new', got, geluNewRef(x), 1e-6, 1e-5, seed);
  });

  it('silu(gate) * up over 13*37 elements', async () => {
    const seed = freshSeed();
    const next = rng(seed);
    const n = 13 * 37;
    const g = roundF32(randn(next, n, 3));
    g[0] = -90;
    const u = roundF32(randn(next, n));
    const got = await withGpu(async (rt) => {
      const a = uploadF32(rt, 'gate', g);
      const pass = new KernelPass(rt, 'test.silu');
      siluMul(pass, n, a, uploadF32(rt, 'up', u));
      pass.submit();
      return rt.readF32(a);
    });
    checkClose('silu_mul', got, siluMulRef(g, u), 1e-6, 1e-5, seed);
  });

  it('gelu(gate) * up (GeGLU) over 13*37 elements, including large |gate|', async () => {
    const seed = freshSeed();
    const next = rng(seed);
    const n = 13 * 37;
    const g = roundF32(randn(next, n, 3));
    g[0] = 40;
    g[1] = -40;
    const u = roundF32(randn(next, n));
    const got = await withGpu(async (rt) => {
      const a = uploadF32(rt, 'gate', g);
      const pass = new KernelPass(rt, 'test.gelu_mul');
      geluMul(pass, n, a, uploadF32(rt, 'up', u));
      pass.submit();
      return rt.readF32(a);
    });
    checkClose('gelu_mul', got, geluMulRef(g, u), 1e-6, 1e-5, seed);
  });
});
