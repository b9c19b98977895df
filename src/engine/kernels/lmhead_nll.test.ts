import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32, uploadWeight } from '../model/testutil.ts';
import { lmHeadLogits, lmHeadNll } from './lmhead_nll.ts';
import { lmHeadNllRef } from './lmhead_nll.ref.ts';
import { KernelPass } from './pass.ts';
import type { FloatDType } from '../io/dtypes.ts';

describe('lmhead_nll.wgsl', () => {
  for (const [VC, dtype, softcap] of [[64, 'F32', 0], [301, 'BF16', 0], [100, 'F16', 0], [100, 'BF16', 3]] as [number, FloatDType, number][]) {
    it(`streams V=301 in chunks of ${VC} with an online logsumexp (${dtype} head, rows=13, C=40${softcap ? `, logits soft-capped at ${softcap}` : ''})`, async () => {
      const seed = freshSeed();
      const next = rng(seed);
      const [rows, C, V] = [13, 40, 301];
      const x = roundF32(randn(next, rows * C));
      const targets = Array.from({ length: rows }, (_, r) => (r === rows - 1 ? -1 : Math.floor(Math.abs(next()) * 997) % V));
      const { got, want, uncapped } = await withGpu(async (rt) => {
        const w = uploadWeight(rt, 'w', randn(next, V * C, 0.5), dtype);
        const nll = rt.storage('nll', rows * 4);
        const pass = new KernelPass(rt, 'test.lmhead');
        lmHeadNll(pass, {
          rows, C, V, x: uploadF32(rt, 'x', x), w: w.ref,
          targets: rt.upload('targets', Int32Array.from(targets)),
          chunk: rt.storage('chunk', rows * VC * 4), VC,
          state: rt.storage('state', rows * 3 * 4), nll, softcap,
        });
        pass.submit();
        return { got: await rt.readF32(nll), want: lmHeadNllRef(x, C, w.values, V, targets, softcap).nll, uncapped: lmHeadNllRef(x, C, w.values, V, targets).nll };
      });
      expect(got[rows - 1]).toBe(0);
      checkClose('nll', got, want, 1e-5, 1e-5, seed);
      // Logits of std ~3 against a cap of 3: the cap must change the result.
      if (softcap) expect(() => checkClose('uncapped', got, uncapped, 1e-5, 1e-5, seed)).toThrow(/mismatches/);
    });
  }

  it('logits of one row for generation (V=301, C=40)', async () => {
    const seed = freshSeed();
    const next = rng(seed);
    const [rows, C, V] = [4, 40, 301];
    const x = roundF32(randn(next, rows * C));
    const { got, want } = await withGpu(async (rt) => {
      const w = uploadWeight(rt, 'w', randn(next, V * C, 0.5), 'F16');
      const out = rt.storage('logits', V * 4);
      const pass = new KernelPass(rt, 'test.lmhead.logits');
      lmHeadLogits(pass, { row: 3, C, V, x: uploadF32(rt, 'x', x), w: w.ref, out });
      pass.submit();
      return { got: await rt.readF32(out), want: lmHeadNllRef(x.slice(3 * C), C, w.values, V, [0]).logits };
    });
    checkClose('last logits', got, want, 1e-5, 1e-4, seed);
  });
});
