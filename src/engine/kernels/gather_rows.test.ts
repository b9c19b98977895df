import { describe, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32 } from '../model/testutil.ts';
import { gatherRows } from './gather_rows.ts';
import { gatherRowsRef } from './gather_rows.ref.ts';
import { KernelPass } from './pass.ts';

describe('gather_rows.wgsl', () => {
  it('copies chosen rows (repeated, out of order, the last row) of a (37, 45) matrix', async () => {
    const seed = freshSeed();
    const next = rng(seed);
    const rows = 37;
    const C = 45;
    const x = roundF32(randn(next, rows * C));
    const idx = [36, 0, 5, 5, 17, 2, 36, 11, ...Array.from({ length: 13 }, () => Math.floor(Math.abs(next()) * 1000) % rows)];
    const got = await withGpu(async (rt) => {
      const y = rt.storage('y', idx.length * C * 4);
      const pass = new KernelPass(rt, 'test.gather_rows');
      gatherRows(pass, { R: idx.length, C, idx: rt.upload('idx', Uint32Array.from(idx)), x: uploadF32(rt, 'x', x), y });
      pass.submit();
      return rt.readF32(y);
    });
    // A copy: exact.
    checkClose('gather_rows', got, gatherRowsRef(x, C, idx), 0, 0, seed);
  });
});
