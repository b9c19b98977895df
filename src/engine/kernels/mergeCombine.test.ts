import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { compareOutput, deltaRows, fineTunes, modelRows, randomValues, uploadTensor } from '../merge/testkit.ts';
import { FLOAT_DTYPES, storageBytes } from '../io/dtypes.ts';
import { combineRows } from './mergeCombine.ts';
import { combineRef } from './mergeCombine.ref.ts';

describe('combineRows (shaders/merge/combine.wgsl, combine4.wgsl)', () => {
  for (const n of [1, 7, 1000, 4099]) {
    for (const baseDtype of FLOAT_DTYPES) {
      it(`alpha·base + Σ c_r row_r matches float64, rows of models in mixed dtypes, Δ or raw (n=${n}, base ${baseDtype}, all output dtypes)`, async () => {
        await withGpu(async (rt) => {
          const base = uploadTensor(rt, 'base', randomValues(n), baseDtype);
          const models = fineTunes(base.values, 5).map((v, i) => uploadTensor(rt, `m${i}`, v, FLOAT_DTYPES[i % 3]!));
          const rows = modelRows(rt, models, n);
          const chunk = rows.chunks[0]!;
          // Δ as the kernel forms it: the f32 difference of the decoded values.
          const deltas = models.map((m) => Float64Array.from(m.values, (x, i) => Math.fround(x - base.values[i]!)));
          const coef = Array.from({ length: 5 }, () => Math.fround(Math.random() * 3 - 1));
          for (const outDtype of FLOAT_DTYPES) {
            for (const raw of [false, true]) {
              const alpha = raw ? 0.75 : 1;
              const hasBase = !raw || outDtype !== 'F32';
              const out = combineRows(rt, { base: base.gpu, alpha, hasBase, chunk, raw, coefficients: coef, outDtype, dst: rt.storage('out', storageBytes(outDtype, n)) });
              const ref = combineRef(hasBase ? base.values : undefined, alpha, raw ? models.map((m) => m.values) : deltas, coef);
              const cmp = compareOutput(await rt.read(out), ref, outDtype);
              expect(cmp.mismatches, `${outDtype} raw=${raw} base=${hasBase}`).toEqual([]);
            }
          }
        });
      });
    }
  }

  for (const code of ['F32', 'BF16', 'Q8'] as const) {
    it(`reads compressed Δ rows (${code}) as stored, and the models as θ + Δ`, async () => {
      await withGpu(async (rt) => {
        for (const n of [7, 1000, 4099]) {
          const base = uploadTensor(rt, 'base', randomValues(n), 'BF16');
          const models = fineTunes(base.values, 3).map((v, i) => uploadTensor(rt, `m${i}`, v, 'F32'));
          const { rows, values } = await deltaRows(rt, base, models, n, code);
          const coef = [0.7, -0.4, 1.3];
          for (const raw of [false, true]) {
            const out = combineRows(rt, { base: base.gpu, alpha: raw ? 0.5 : 1, hasBase: true, chunk: rows.chunks[0]!, raw, coefficients: coef, outDtype: 'F32' });
            const rowsRef = raw ? values.map((v) => v.map((d, i) => Math.fround(base.values[i]! + d))) : values;
            const ref = combineRef(base.values, raw ? 0.5 : 1, rowsRef, coef);
            expect(compareOutput(await rt.read(out), ref, 'F32').mismatches, `n=${n} raw=${raw}`).toEqual([]);
          }
        }
      });
    });
  }
});
