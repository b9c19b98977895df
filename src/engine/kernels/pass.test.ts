import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32 } from '../model/testutil.ts';
import { residualAdd } from './residual.ts';
import { residualAddRef } from './residual.ref.ts';
import { KernelPass } from './pass.ts';

describe('DispatchPlan', () => {
  it('replays recorded dispatches from one parameter buffer, in one pass or one pass each', async () => {
    const seed = freshSeed();
    const next = rng(seed);
    const n = 300;
    const m = 7; // a second size: a different Params value per dispatch
    const x = roundF32(randn(next, n));
    const y = roundF32(randn(next, n));
    const { got, dispatches, live } = await withGpu(async (rt) => {
      const xb = uploadF32(rt, 'x', x);
      const yb = uploadF32(rt, 'y', y);
      const before = rt.memory.live;
      const pass = new KernelPass(rt, 'test.plan');
      residualAdd(pass, n, xb, yb);
      residualAdd(pass, m, xb, yb);
      const plan = pass.plan();
      plan.submit();
      rt.passPerDispatch = true;
      try {
        plan.submit();
      } finally {
        rt.passPerDispatch = false;
      }
      const got = await rt.readF32(xb);
      plan.destroy();
      return { got, dispatches: plan.dispatches, live: rt.memory.live - before };
    });
    expect(dispatches).toBe(2);
    expect(live).toBe(0);
    // Two replays of (x += y over n, x += y over the first m).
    const head = y.map((v, i) => (i < m ? v : 0));
    let want = x;
    for (let r = 0; r < 2; r++) want = roundF32(residualAddRef(roundF32(residualAddRef(want, y)), head));
    checkClose('x', got, want, 1e-6, 1e-6, seed);
  });
});
