import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { compareOutput, fineTunes, randomValues, uploadTensor } from '../merge/testkit.ts';
import { FLOAT_DTYPES } from '../io/dtypes.ts';
import { combineRows } from './mergeCombine.ts';
import { combineRef } from './mergeCombine.ref.ts';
import { computeDeltas } from './mergeDeltas.ts';
import { deltasRef } from './mergeDeltas.ref.ts';

describe('computeDeltas (shaders/merge/deltas.wgsl)', () => {
  for (const n of [1, 7, 4099]) {
    it(`rows are the correctly rounded f32 θ_i − θ for mixed model dtypes (n=${n})`, async () => {
      await withGpu(async (rt) => {
        const base = uploadTensor(rt, 'base', randomValues(n), 'BF16');
        const models = FLOAT_DTYPES.map((dt, i) => uploadTensor(rt, `m${i}`, randomValues(n), dt));
        for (const withBase of [true, false]) {
          const packed = await rt.readF32(computeDeltas(rt, withBase ? base.gpu : undefined, models.map((m) => m.gpu), n));
          const ref = deltasRef(withBase ? base.values : undefined, models.map((m) => m.values));
          const bad: string[] = [];
          ref.forEach((row, r) => row.forEach((v, i) => {
            if (packed[r * n + i] !== Math.fround(v) && bad.length < 8) bad.push(`[${r},${i}] gpu ${packed[r * n + i]} ref ${v}`);
          }));
          expect(bad).toEqual([]);
        }
      });
    });
  }
});

describe('combineRows (shaders/merge/combine.wgsl)', () => {
  for (const n of [1, 7, 1000, 4099]) {
    for (const baseDtype of FLOAT_DTYPES) {
      it(`alpha·base + Σ c_r rows_r matches float64 (n=${n}, base ${baseDtype}, all output dtypes)`, async () => {
        await withGpu(async (rt) => {
          const base = uploadTensor(rt, 'base', randomValues(n), baseDtype);
          const models = fineTunes(base.values, 5).map((v, i) => uploadTensor(rt, `m${i}`, v, FLOAT_DTYPES[i % 3]!));
          const deltas = computeDeltas(rt, base.gpu, models.map((m) => m.gpu), n);
          const rows = deltasRef(base.values, models.map((m) => m.values)).map((r) => Float64Array.from(r, Math.fround));
          const coef = Array.from({ length: 5 }, () => Math.fround(Math.random() * 3 - 1));
          for (const outDtype of FLOAT_DTYPES) {
            for (const hasBase of [true, false]) {
              const alpha = hasBase ? 0.75 : 0;
              const out = combineRows(rt, { base: hasBase ? base.gpu : undefined, alpha, rows: deltas, coefficients: coef, n, outDtype });
              const ref = combineRef(hasBase ? base.values : undefined, alpha, rows, coef);
              const cmp = compareOutput(await rt.read(out), ref, outDtype);
              expect(cmp.mismatches, `${outDtype} base=${hasBase}`).toEqual([]);
            }
          }
        });
      });
    }
  }
});
