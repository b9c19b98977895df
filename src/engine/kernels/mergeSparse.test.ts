import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { absBits, dareKeepThreshold, elementHash, keyOrder, magnitudeRanks, outlierRanks, rowKey } from '../merge/reference.ts';
import { compareOutput, fineTunes, modelRows, randomValues, uploadTensor } from '../merge/testkit.ts';
import { selectKeys } from './mergeSelect.ts';
import { sparseCombine, sparseL1, type SparseMask } from './mergeSparse.ts';
import { sparseCombineRef } from './mergeSparse.ref.ts';

const SPARSIFY = { none: 'none', band: 'magnitude', random: 'random' } as const;

describe('sparseCombine (shaders/merge/sparse.wgsl)', () => {
  for (const n of [7, 1000, 4099]) {
    for (const mask of ['none', 'band', 'random'] as SparseMask[]) {
      for (const consensus of [false, true]) {
        it(`mask ${mask}, consensus ${consensus} matches float64 (n=${n}, F32)`, async () => {
          await withGpu(async (rt) => {
            const N = 4;
            const base = uploadTensor(rt, 'base', randomValues(n), 'F32');
            const models = fineTunes(base.values, N).map((v, i) => uploadTensor(rt, `m${i}`, v, 'F32'));
            const rows = modelRows(rt, models, n);
            const weights = [0.6, -0.3, 1.1, 0.4];
            const densities = [0.5, 0.3, 0.9, 1];
            const rescale = mask === 'random';
            const bands = mask === 'band' ? selectKeys(rt, { base: base.gpu, rows, ranks: densities.flatMap((d) => { const r = magnitudeRanks(n, d); return [r.lo, r.hi]; }), bounds: ['lower', 'upper'] }) : undefined;
            const out = sparseCombine(rt, {
              base: base.gpu, chunk: rows.chunks[0]!, mask, bands, consensus, normalize: true, lambda: 0.8, seed: 1234, tensorIndex: 5, outDtype: 'F32',
              rows: weights.map((w, r) => ({
                coefficient: (rescale ? w / densities[r]! : w) / (consensus ? 1 : 1.8),
                weight: w,
                keep: rescale ? dareKeepThreshold(densities[r]!) : undefined,
              })),
            });
            const margin = new Float64Array(n);
            const ref = sparseCombineRef(base.values, models.map((m) => m.values), weights, {
              sparsify: SPARSIFY[mask], consensus, normalize: true, lambda: 0.8, densities, seed: 1234, tensorIndex: 5, margin,
            });
            // A sign election decided by less than f32 rounding is a coin flip on either side.
            const cmp = compareOutput(await rt.read(out), ref, 'F32', { skip: (i) => consensus && margin[i]! < 1e-5 });
            expect(cmp.mismatches).toEqual([]);
          });
        });
      }
    }
  }
});

describe('sparseL1 (shaders/merge/sparse.wgsl entry l1)', () => {
  for (const mask of ['band', 'random'] as SparseMask[]) {
    it(`Σ|Δ| and Σ|kept Δ| per row within 1e-6 relative of float64 (${mask}, BF16 models, ties in |Δ|)`, async () => {
      await withGpu(async (rt) => {
        const n = 70_001;
        const N = 3;
        const base = uploadTensor(rt, 'base', randomValues(n), 'BF16');
        const models = fineTunes(base.values, N, 0.1).map((v, i) => uploadTensor(rt, `m${i}`, v, 'BF16'));
        const rows = modelRows(rt, models, n);
        const d32 = models.map((m) => Float32Array.from(m.values, (x, i) => x - base.values[i]!));
        const densities = [0.3, 0.75, 0.5];
        const gammas = [0.01, 0.1, 0];
        const ranks = densities.map((d, r) => outlierRanks(n, d, gammas[r]!));
        const keepThr = densities.map(dareKeepThreshold);
        const bands = mask === 'band' ? selectKeys(rt, { base: base.gpu, rows, ranks: ranks.flatMap((r) => [r.lo, r.hi]), bounds: ['lower', 'upper'] }) : undefined;
        const got = await sparseL1(rt, { mask, bands, seed: 99, tensorIndex: 4, base: base.gpu, rows, keep: mask === 'random' ? keepThr : undefined });
        d32.forEach((row, r) => {
          const order = keyOrder(Uint32Array.from(row, absBits));
          const kept = new Uint8Array(n);
          if (mask === 'band') for (let k = Math.max(1, ranks[r]!.hi); k <= ranks[r]!.lo; k++) kept[order[k - 1]!] = 1;
          else for (let i = 0; i < n; i++) kept[i] = elementHash(rowKey(99, 4, r), i) <= keepThr[r]! ? 1 : 0;
          let total = 0;
          let keptSum = 0;
          row.forEach((x, i) => {
            total += Math.abs(x);
            if (kept[i]) keptSum += Math.abs(x);
          });
          expect(Math.abs(got[r]!.total / total - 1), `row ${r} total`).toBeLessThanOrEqual(1e-6);
          expect(Math.abs(got[r]!.kept / keptSum - 1), `row ${r} kept`).toBeLessThanOrEqual(1e-6);
        });
      });
    });
  }
});
