import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { deltaRows, fineTunes, randomValues, uploadTensor } from '../merge/testkit.ts';
import { compressRowRef } from './mergeCompress.ref.ts';
import { Q8_BLOCK } from './mergeRows.ts';

/**
 * compressRow against its float64 reference on fresh random fine-tunes (never zeros). Floats:
 * bit-exact (the kernel's f32 Δ rounded once, RNE). Q8: the scale within 3 ulp of f32(max|Δ|/127)
 * (WGSL's division is accurate to 2.5 ulp) and q equal to the reference's, except where the
 * quotient Δ/s lies within 1e-5 of a rounding half, where the division's error may tip it by one.
 */
describe('compressRow (shaders/merge/compress.wgsl)', () => {
  for (const n of [1, 63, 64, 1000, 4099]) {
    it(`Q8 and BF16/F16/F32 Δ rows match the reference (n=${n})`, async () => {
      await withGpu(async (rt) => {
        const base = uploadTensor(rt, 'base', randomValues(n), 'BF16');
        const models = fineTunes(base.values, 2, 0.3).map((v, i) => uploadTensor(rt, `m${i}`, v, i === 0 ? 'F32' : 'BF16'));
        const delta32 = models.map((m) => Float32Array.from(m.values, (x, i) => x - base.values[i]!));
        for (const code of ['BF16', 'F16', 'F32'] as const) {
          const { values } = await deltaRows(rt, base, models, n, code);
          values.forEach((got, r) => {
            const want = compressRowRef(delta32[r]!, code).values;
            const bad = [...got.keys()].filter((i) => !Object.is(got[i], want[i])).slice(0, 5).map((i) => `[${i}] ${got[i]} vs ${want[i]}`);
            expect(bad, `${code} row ${r}`).toEqual([]);
          });
        }
        const { values } = await deltaRows(rt, base, models, n, 'Q8');
        let tipped = 0;
        values.forEach((got, r) => {
          const ref = compressRowRef(delta32[r]!, 'Q8');
          const bad: string[] = [];
          for (let i = 0; i < n; i++) {
            const s = ref.scales![Math.floor(i / Q8_BLOCK)]!;
            const q = s > 0 ? Math.round(got[i]! / s) : 0;
            const nearHalf = Math.abs(Math.abs(ref.quotient![i]! % 1) - 0.5) < 1e-5;
            const qOk = q === ref.q![i] || (nearHalf && Math.abs(q - ref.q![i]!) === 1);
            if (q !== ref.q![i]) tipped++;
            if ((!qOk || Math.abs(got[i]! - q * s) > 4 * 2 ** -23 * Math.abs(q * s)) && bad.length < 5) bad.push(`[${i}] ${got[i]} vs ${ref.values[i]} (q ${q} vs ${ref.q![i]})`);
          }
          expect(bad, `Q8 row ${r}`).toEqual([]);
          // Quantisation error at most half a step of the block's scale (plus rounding).
          const worst = Math.max(...Array.from(got, (g, i) => Math.abs(g - delta32[r]![i]!) / (ref.scales![Math.floor(i / Q8_BLOCK)]! || 1)));
          expect(worst).toBeLessThanOrEqual(0.5 + 1e-5 + (tipped ? 1 : 0));
        });
      });
    });
  }
});
