import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../random.ts';
import { withGpu } from '../../testing/gpu.ts';
import { decodeArray } from './decode.ref.ts';
import { countNonFinite, NonFiniteCounters } from './nonFinite.ts';
import { nonFiniteRef } from './nonFinite.ref.ts';
import type { FloatDType } from '../io/dtypes.ts';

/** Random words (every bit pattern, so ±Inf and NaN of any payload occur), padded to whole u32 words. */
function randomTensor(dtype: FloatDType, n: number, seed: number, rareHits: boolean): Uint8Array {
  const rand = mulberry32(seed);
  const bytes = dtype === 'F32' ? 4 : 2;
  const out = new Uint8Array(Math.max(4, Math.ceil((n * bytes) / 4) * 4));
  const view = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    // Finite values with a few non-finite ones, or raw random bits (about 1/256 resp. 1/32 non-finite).
    let bits = Math.floor(rand() * 2 ** 32);
    if (rareHits) {
      const exponent = dtype === 'F32' ? 0x7f800000 : dtype === 'F16' ? 0x7c00 : 0x7f80;
      bits = rand() < 0.002 ? bits | exponent : bits & ~(dtype === 'F32' ? 0x40000000 : dtype === 'F16' ? 0x4000 : 0x4000);
    }
    if (bytes === 4) view.setUint32(4 * i, bits >>> 0, true);
    else view.setUint16(2 * i, bits & 0xffff, true);
  }
  // The padding half of the last word is all ones: an element past n must not be counted.
  if (bytes === 2 && n % 2 === 1) view.setUint16(2 * n, 0xffff, true);
  return out;
}

describe('non-finite check (shaders/merge/nonfinite.wgsl) against float64', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`${dtype}: count and first index equal the float64 reference on random bits (n = 1 … 70001, odd and even)`, async () => {
      await withGpu(async (rt) => {
        let seed = 11;
        for (const n of [1, 2, 7, 1000, 4099, 70001]) {
          for (const rare of [false, true]) {
            const bytes = randomTensor(dtype, n, seed++, rare);
            const want = nonFiniteRef(decodeArray(bytes, dtype, n));
            const got = await countNonFinite(rt, rt.upload('t', bytes), dtype, n);
            expect(got, `${dtype} n=${n} rare=${rare}`).toEqual(want);
          }
        }
      });
    });
  }

  it('a finite tensor reads {count 0, first -1}; many tensors share one counter buffer, one slot each', async () => {
    await withGpu(async (rt) => {
      const finite = new Float32Array(5000).map((_, i) => Math.sin(i) * 3e38);
      expect(await countNonFinite(rt, rt.upload('f', finite), 'F32', finite.length)).toEqual({ count: 0, first: -1 });
      const counters = NonFiniteCounters.create(rt, 3);
      const tensors = [randomTensor('F32', 999, 5, true), randomTensor('BF16', 1001, 6, false), randomTensor('F16', 64, 7, true)];
      const dtypes = ['F32', 'BF16', 'F16'] as const;
      const ns = [999, 1001, 64];
      // Slots filled out of order; each keeps its own tensor's verdict.
      for (const s of [2, 0, 1]) counters.check(rt.upload(`t${s}`, tensors[s]!), dtypes[s]!, ns[s]!, s);
      const got = await counters.read();
      expect(got).toEqual(tensors.map((t, s) => nonFiniteRef(decodeArray(t, dtypes[s]!, ns[s]!))));
      expect(got.some((v) => v.count > 0)).toBe(true);
      expect(await counters.read(1, 1)).toEqual([got[1]]);
      counters.destroy();
    });
  });
});
