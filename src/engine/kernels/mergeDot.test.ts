import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { dotNorms } from './mergeDot.ts';
import { dotNormsRef } from './mergeDot.ref.ts';

describe('dotNorms (shaders/merge/dot.wgsl)', () => {
  for (const n of [1, 7, 1000, 4099, 70001]) {
    it(`a·b, |a|², |b|² within 1e-6 relative of float64 (n=${n})`, async () => {
      await withGpu(async (rt) => {
        const a = Float32Array.from({ length: n }, () => Math.random() * 2 - 1 || 0.5);
        const b = Float32Array.from({ length: n }, (_, i) => 0.3 * a[i]! + Math.random() - 0.5);
        const got = await dotNorms(rt, rt.upload('a', a), rt.upload('b', b), n);
        const want = dotNormsRef(a, b);
        // The dot is scaled by |a||b| (what slerp divides by), the norms by themselves.
        const scale = Math.sqrt(want.aa * want.bb);
        const errs = { dot: Math.abs(got.dot - want.dot) / scale, aa: Math.abs(got.aa / want.aa - 1), bb: Math.abs(got.bb / want.bb - 1) };
        expect(errs.dot, JSON.stringify({ got, want })).toBeLessThanOrEqual(1e-6);
        expect(errs.aa).toBeLessThanOrEqual(1e-6);
        expect(errs.bb).toBeLessThanOrEqual(1e-6);
      });
    });
  }
});
