import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { deltaRows, modelRows, uploadTensor } from '../merge/testkit.ts';
import { createTensorRows, writeTensorRow } from './mergeRows.ts';
import { dotNorms } from './mergeDot.ts';
import { dotNormsRef } from './mergeDot.ref.ts';

function expectClose(got: { dot: number; aa: number; bb: number }, want: { dot: number; aa: number; bb: number }): void {
  // The dot is scaled by |a||b| (what slerp divides by), the norms by themselves.
  const scale = Math.sqrt(want.aa * want.bb);
  const errs = { dot: Math.abs(got.dot - want.dot) / scale, aa: Math.abs(got.aa / want.aa - 1), bb: Math.abs(got.bb / want.bb - 1) };
  expect(errs.dot, JSON.stringify({ got, want })).toBeLessThanOrEqual(1e-6);
  expect(errs.aa).toBeLessThanOrEqual(1e-6);
  expect(errs.bb).toBeLessThanOrEqual(1e-6);
}

describe('dotNorms (shaders/merge/dot.wgsl)', () => {
  for (const n of [1, 7, 1000, 4099, 70001]) {
    it(`base·θ_0 (raw) and Δ_0·Δ_1 within 1e-6 relative of float64 (n=${n})`, async () => {
      await withGpu(async (rt) => {
        const aValues = Float64Array.from({ length: n }, () => Math.random() * 2 - 1 || 0.5);
        const base = uploadTensor(rt, 'base', aValues, 'F32');
        const m0 = uploadTensor(rt, 'm0', aValues.map((x) => 0.3 * x + Math.random() - 0.5), 'BF16');
        const m1 = uploadTensor(rt, 'm1', aValues.map((x) => x + Math.random() - 0.5), 'F16');
        const rows = modelRows(rt, [m0, m1], n);
        expectClose(await dotNorms(rt, { base: base.gpu, rows, raw: true, a: 'base', b: 0 }), dotNormsRef(base.values, m0.values));
        const d = [m0, m1].map((m) => Float64Array.from(m.values, (x, i) => Math.fround(x - base.values[i]!)));
        expectClose(await dotNorms(rt, { base: base.gpu, rows, a: 0, b: 1 }), dotNormsRef(d[0]!, d[1]!));
        // And from compressed rows: Q8 Δ read as stored.
        const q8 = await deltaRows(rt, base, [m0, m1], n, 'Q8');
        expectClose(await dotNorms(rt, { base: base.gpu, rows: q8.rows, a: 0, b: 1 }), dotNormsRef(q8.values[0]!, q8.values[1]!));
      });
    });
  }

  it('adds across chunks as over one piece', async () => {
    await withGpu(async (rt) => {
      const n = 70_001;
      const a = Float64Array.from({ length: n }, () => Math.random() * 2 - 1 || 0.5);
      const base = uploadTensor(rt, 'base', a, 'BF16');
      const m = uploadTensor(rt, 'm', a.map((x) => x + Math.random() - 0.5), 'BF16');
      const limited = new Proxy(rt.limits, { get: (t, k) => (k === 'maxStorageBufferBindingSize' ? 20_000 : (Reflect.get(t, k) as unknown)) });
      Object.defineProperty(rt, 'limits', { configurable: true, get: () => limited });
      let rows;
      try {
        rows = createTensorRows(rt, 'chunks', ['BF16'], n, 'models');
      } finally {
        delete (rt as { limits?: unknown }).limits;
      }
      expect(rows.chunks.length).toBeGreaterThan(5);
      writeTensorRow(rt, rows, 0, new Uint8Array(await rt.read(m.gpu.buffer)));
      expectClose(await dotNorms(rt, { base: base.gpu, rows, raw: true, a: 'base', b: 0 }), dotNormsRef(base.values, m.values));
    });
  });
});
