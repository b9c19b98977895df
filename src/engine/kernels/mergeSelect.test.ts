import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { readSelected, selectAbsRanks } from './mergeSelect.ts';
import { selectAbsRanksRef } from './mergeSelect.ref.ts';

function rows(N: number, n: number, duplicates: boolean): Float32Array[] {
  return Array.from({ length: N }, (_, r) =>
    Float32Array.from({ length: n }, () => {
      const v = (Math.random() * 2 - 1) * 10 ** (r - 1);
      // Coarse values repeat often: equal magnitudes must not confuse the select.
      return duplicates ? Math.round(v * 8) / 8 || 0.125 : v || 0.5;
    }),
  );
}

describe('selectAbsRanks (shaders/merge/select.wgsl)', () => {
  for (const n of [1, 7, 1000, 4099]) {
    for (const duplicates of [false, true]) {
      it(`k-th largest |x| equals the sorted CPU element exactly (n=${n}, duplicates=${duplicates})`, async () => {
        await withGpu(async (rt) => {
          const N = 3;
          const data = rows(N, n, duplicates);
          const packed = new Float32Array(N * n);
          data.forEach((r, i) => packed.set(r, i * n));
          const ranks: number[] = [];
          for (let r = 0; r < N; r++) ranks.push(1 + Math.floor(Math.random() * n), [n, 1, 0][r]!);
          const state = selectAbsRanks(rt, rt.upload('rows', packed), N, n, ranks, 2);
          const got = await readSelected(rt, state, N, 2);
          const want = selectAbsRanksRef(data, ranks, 2);
          const bad = Array.from(got).flatMap((g, j) => (g === want[j] ? [] : [`row ${j >> 1} rank ${ranks[j]}: gpu 0x${g.toString(16)} ref 0x${want[j]!.toString(16)}`]));
          expect(bad).toEqual([]);
        });
      });
    }
  }

  it('handles one query per row and many rows', async () => {
    await withGpu(async (rt) => {
      const N = 9;
      const n = 333;
      const data = rows(N, n, false);
      const packed = new Float32Array(N * n);
      data.forEach((r, i) => packed.set(r, i * n));
      const ranks = Array.from({ length: N }, () => Math.floor(Math.random() * (n + 1)));
      const got = await readSelected(rt, selectAbsRanks(rt, rt.upload('rows', packed), N, n, ranks, 1), N, 1);
      expect(Array.from(got)).toEqual(Array.from(selectAbsRanksRef(data, ranks, 1)));
    });
  });
});
