import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import type { FloatDType } from '../io/dtypes.ts';
import { decodeArray } from './decode.ref.ts';
import { loraDelta } from './loraDelta.ts';
import { loraDeltaRef } from './loraDelta.ref.ts';
import { randomValues, uploadTensor } from '../merge/testkit.ts';

/**
 * shaders/lora/delta.wgsl against its float64 reference on fresh random factors, every factor
 * dtype, both layouts, ranks 1..64, the three uses (θ + Δ, Δ into a packed row at an offset,
 * Δ added onto a buffer). Bound per element, from f32 error analysis of the r-term sum, the
 * scaling and the final addition: |gpu − ref| <= 2^-22 · ((r + 2)·|s|·Σ_k |B_ok A_ki| + |start|).
 */
const EPS = 2 ** -24;

function bounds(a: Float64Array, b: Float64Array, f: { rank: number; out: number; in: number; scale: number; transposed: boolean }, start?: Float64Array): Float64Array {
  const abs = loraDeltaRef(a.map(Math.abs), b.map(Math.abs), { ...f, scale: Math.abs(f.scale) });
  return abs.map((x, e) => 4 * EPS * ((f.rank + 2) * x + Math.abs(start?.[e] ?? 0)));
}

const CASES: { rank: number; out: number; in: number; transposed: boolean; a: FloatDType; b: FloatDType; base: FloatDType }[] = [
  { rank: 1, out: 7, in: 5, transposed: false, a: 'F32', b: 'F32', base: 'F32' },
  { rank: 4, out: 96, in: 32, transposed: true, a: 'F32', b: 'F32', base: 'F32' },
  { rank: 8, out: 33, in: 65, transposed: false, a: 'BF16', b: 'BF16', base: 'BF16' },
  { rank: 16, out: 130, in: 47, transposed: true, a: 'F16', b: 'BF16', base: 'F16' },
  { rank: 64, out: 300, in: 129, transposed: false, a: 'F16', b: 'F32', base: 'BF16' },
];

describe('loraDelta (shaders/lora/delta.wgsl)', () => {
  for (const c of CASES) {
    it(`r ${c.rank}, (${c.out}, ${c.in})${c.transposed ? ' stored (in, out)' : ''}, A ${c.a} B ${c.b} θ ${c.base}`, async () => {
      await withGpu(async (rt) => {
        const n = c.out * c.in;
        const A = uploadTensor(rt, 'A', randomValues(c.rank * c.in, 1 / Math.sqrt(c.in)), c.a);
        const B = uploadTensor(rt, 'B', randomValues(c.out * c.rank, 0.05), c.b);
        const theta = uploadTensor(rt, 'theta', randomValues(n, 0.1), c.base);
        const f = { a: A.gpu, b: B.gpu, rank: c.rank, out: c.out, in: c.in, scale: 1.7 / Math.sqrt(c.rank), transposed: c.transposed };
        const check = async (buffer: GPUBuffer, offset: number, want: Float64Array, bound: Float64Array): Promise<number> => {
          const got = decodeArray(await rt.read(buffer), 'F32', offset + n).subarray(offset);
          let worst = 0;
          for (let e = 0; e < n; e++) {
            const err = Math.abs(got[e]! - want[e]!);
            expect(err, `element ${e}`).toBeLessThanOrEqual(bound[e]!);
            worst = Math.max(worst, err / bound[e]!);
          }
          return worst;
        };
        // θ + Δ.
        const set = loraDelta(rt, f, { mode: 'set', base: theta.gpu });
        await check(set, 0, loraDeltaRef(A.values, B.values, f, theta.values), bounds(A.values, B.values, f, theta.values));
        // Δ alone into row 2 of a packed (3, n) buffer; the other rows untouched.
        const packed = rt.upload('packed', new Float32Array(3 * n).fill(-5));
        loraDelta(rt, f, { mode: 'set', dst: packed, dstOffset: 2 * n });
        await check(packed, 2 * n, loraDeltaRef(A.values, B.values, f), bounds(A.values, B.values, f));
        const rows = decodeArray(await rt.read(packed), 'F32', 3 * n);
        expect(rows.subarray(0, 2 * n).every((x) => x === -5)).toBe(true);
        // Added onto a buffer with a negative coefficient folded into the scale.
        const startValues = Float32Array.from(randomValues(n, 0.3));
        const acc = rt.upload('acc', startValues);
        const g = { ...f, scale: -0.6 * f.scale };
        loraDelta(rt, g, { mode: 'add', dst: acc });
        const start = Float64Array.from(startValues);
        await check(acc, 0, loraDeltaRef(A.values, B.values, g, start), bounds(A.values, B.values, g, start));
      });
    });
  }

  it('refuses views that do not hold the factors', async () => {
    await withGpu(async (rt) => {
      const A = uploadTensor(rt, 'A', randomValues(4 * 8), 'F32');
      const B = uploadTensor(rt, 'B', randomValues(6 * 3), 'F32');
      expect(() => loraDelta(rt, { a: A.gpu, b: B.gpu, rank: 4, out: 6, in: 8, scale: 1, transposed: false }, { mode: 'set' })).toThrow(/loraDelta B/);
    });
  });
});
