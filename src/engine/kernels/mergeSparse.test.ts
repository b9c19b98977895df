import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { dareKeepThreshold, magnitudeRanks } from '../merge/reference.ts';
import { compareOutput, fineTunes, randomValues, uploadTensor } from '../merge/testkit.ts';
import { computeDeltas } from './mergeDeltas.ts';
import { selectAbsRanks } from './mergeSelect.ts';
import { sparseCombine, type SparseMask } from './mergeSparse.ts';
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
            const deltas = computeDeltas(rt, base.gpu, models.map((m) => m.gpu), n);
            const weights = [0.6, -0.3, 1.1, 0.4];
            const densities = [0.5, 0.3, 0.9, 1];
            const rescale = mask === 'random';
            const bands = mask === 'band' ? selectAbsRanks(rt, deltas, N, n, densities.flatMap((d) => { const r = magnitudeRanks(n, d); return [r.lo, r.hi]; }), 2) : undefined;
            const out = sparseCombine(rt, {
              base: base.gpu, deltas, n, mask, bands, consensus, normalize: true, lambda: 0.8, seed: 1234, tensorIndex: 5, outDtype: 'F32',
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
