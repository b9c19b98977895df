import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { deltaRows, randomValues, uploadTensor } from '../merge/testkit.ts';
import { createTensorRows, rowChunkElements } from './mergeRows.ts';
import { readSelected, selectKeys } from './mergeSelect.ts';
import { selectKeysRef } from './mergeSelect.ref.ts';

/** Δ rows whose magnitudes repeat often (coarse values) or not, never zero. */
function values(N: number, n: number, duplicates: boolean): Float64Array[] {
  return Array.from({ length: N }, (_, r) =>
    Float64Array.from({ length: n }, () => {
      const v = (Math.random() * 2 - 1) * 10 ** (r - 1);
      // Coarse values repeat often: equal magnitudes must be ranked by index.
      return duplicates ? Math.round(v * 8) / 8 || 0.125 : v || 0.5;
    }),
  );
}

/** Limits under which the rows of N F32 Δ of n elements fall into `chunks` chunks. */
function limitsFor(rt: { limits: GPUSupportedLimits }, binding: number): GPUSupportedLimits {
  return new Proxy(rt.limits, { get: (target, key) => (key === 'maxStorageBufferBindingSize' ? binding : (Reflect.get(target, key) as unknown)) });
}

describe('selectKeys (shaders/merge/select.wgsl)', () => {
  for (const n of [1, 7, 1000, 4099]) {
    for (const duplicates of [false, true]) {
      it(`the k-th largest key (|Δ|, then lower index) equals the sorted CPU element exactly (n=${n}, duplicates=${duplicates})`, async () => {
        await withGpu(async (rt) => {
          const N = 3;
          const data = values(N, n, duplicates);
          // Stored as F32 Δ rows: the kernels rank exactly these values.
          const zero = uploadTensor(rt, 'zero', new Float64Array(n), 'F32');
          const models = data.map((v, i) => uploadTensor(rt, `d${i}`, v, 'F32'));
          const { rows, values: stored } = await deltaRows(rt, zero, models, n, 'F32');
          const ranks: number[] = [];
          for (let r = 0; r < N; r++) ranks.push(1 + Math.floor(Math.random() * n), [n, 1, 0][r]!);
          const got = await readSelected(rt, selectKeys(rt, { base: zero.gpu, rows, ranks, bounds: ['lower', 'upper'] }), N, 2);
          const want = selectKeysRef(stored.map((v) => Float32Array.from(v)), ranks, ['lower', 'upper']);
          expect(got).toEqual(want);
        });
      });
    }
  }

  it('selects across chunks exactly as in one piece (models in BF16, Δ formed in the kernel, many ties)', async () => {
    await withGpu(async (rt) => {
      const n = 70_001;
      const N = 3;
      const base = uploadTensor(rt, 'base', randomValues(n), 'BF16');
      // BF16 models near the base: many equal |Δ| (the case mergekit's argsort leaves arbitrary).
      const models = Array.from({ length: N }, (_, r) => uploadTensor(rt, `m${r}`, base.values.map((x) => x + Math.round((Math.random() - 0.5) * 8) * 2 ** -7 * (r + 1)), 'BF16'));
      const delta32 = models.map((m) => Float32Array.from(m.values, (x, i) => x - base.values[i]!));
      const ranks = [1234, 0, 35_000, 7, n, 1];
      const want = selectKeysRef(delta32, ranks, ['lower', 'upper']);
      const real = rt.limits;
      const limited = limitsFor(rt, 40_000);
      expect(rowChunkElements(limited, ['BF16', 'BF16', 'BF16'], n)).toBeLessThan(n / 4);
      Object.defineProperty(rt, 'limits', { configurable: true, get: () => limited });
      let rows;
      try {
        rows = createTensorRows(rt, 'test.rows', ['BF16', 'BF16', 'BF16'], n, 'models');
      } finally {
        delete (rt as { limits?: unknown }).limits;
      }
      expect(rows.chunks.length).toBeGreaterThan(4);
      const words = models.map((m) => rt.read(m.gpu.buffer));
      for (const [r, w] of (await Promise.all(words)).entries()) {
        for (const c of rows.chunks) rt.write(c.rows.buffer, new Uint8Array(w, c.offset * 2, c.rows.n * 2), c.rows.layout.offsets[r]! * 4);
      }
      const got = await readSelected(rt, selectKeys(rt, { base: base.gpu, rows, ranks, bounds: ['lower', 'upper'] }), N, 2);
      expect(got).toEqual(want);
      expect(real).toBe(rt.limits);
    });
  });
});
