import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import type { FloatDType } from '../io/dtypes.ts';
import { gpuDecodeToF32, gpuEncodeFromF32 } from './decode.ts';
import {
  bf16BitsToNumber,
  bitsFromF32,
  f16BitsToNumber,
  f32BitsToBf16,
  f32BitsToF16,
  f32FromBits,
  numberToBf16Bits,
  numberToF16Bits,
} from './decode.ref.ts';

const allHalves = Uint16Array.from({ length: 65536 }, (_, i) => i);
const hex = (v: number, w = 8): string => `0x${(v >>> 0).toString(16).padStart(w, '0')}`;

/** Same value, NaN matching NaN, -0 distinct from +0. */
function sameValue(a: number, b: number): boolean {
  return Number.isNaN(a) ? Number.isNaN(b) : Object.is(a, b);
}

function firstMismatches(count: number, bad: (i: number) => string | undefined, limit = 8): string[] {
  const out: string[] = [];
  for (let i = 0; i < count && out.length < limit; i++) {
    const msg = bad(i);
    if (msg) out.push(msg);
  }
  return out;
}

/** f32 bit patterns that stress RNE: random bits everywhere, exact midpoints, boundaries. */
function encodeCases(dtype: 'F16' | 'BF16'): Uint32Array {
  const cases: number[] = [];
  for (let i = 0; i < 20000; i++) cases.push((Math.random() * 2 ** 32) >>> 0);
  for (let i = 0; i < 20000; i++) cases.push(bitsFromF32((Math.random() - 0.5) * 2 ** (Math.random() * 40 - 28)));
  // Exact midpoints between neighbours h and h+1 (ties, both parities) and one f32 ulp either side.
  const dec = dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber;
  const maxFinite = dtype === 'F16' ? 0x7bff : 0x7f7f;
  for (let i = 0; i < 6000; i++) {
    const h = Math.floor(Math.random() * maxFinite);
    const mid = (dec(h) + dec(h + 1)) / 2;
    const b = bitsFromF32(mid);
    const neg = Math.random() < 0.5 ? 0x80000000 : 0;
    cases.push((b | neg) >>> 0, ((b + 1) | neg) >>> 0, ((b - 1) | neg) >>> 0);
  }
  const specials = dtype === 'F16'
    ? [65504, 65519.99, 65520, 65536, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 2 ** -25 * (1 + 2 ** -23), 2 ** -14, 2 ** -14 * (1 - 2 ** -11), 1e-45, 0, -0, Infinity, -Infinity]
    : [3.3895313892515355e38, 3.4028234663852886e38, 2 ** -126, 2 ** -133, 2 ** -134, 1e-45, 0, -0, Infinity, -Infinity];
  for (const s of specials) cases.push(bitsFromF32(s), bitsFromF32(-s));
  cases.push(0x7fc00000, 0xffc00001, 0x7f800001, 0x7f802000, 0x7fffffff);
  return Uint32Array.from(cases);
}

describe('decodeToF32 (shaders/common/decode.wgsl)', () => {
  for (const [dtype, ref] of [['F16', f16BitsToNumber], ['BF16', bf16BitsToNumber]] as const) {
    it(`decodes all 65536 ${dtype} bit patterns exactly`, async () => {
      await withGpu(async (rt) => {
        const src = rt.upload('src', allHalves);
        const out = new Uint32Array(await rt.read(gpuDecodeToF32(rt, src, dtype, 65536)));
        const bad = firstMismatches(65536, (h) => {
          const got = f32FromBits(out[h]!);
          return sameValue(got, ref(h)) ? undefined : `${hex(h, 4)}: gpu ${got} (${hex(out[h]!)}) ref ${ref(h)}`;
        });
        expect(bad).toEqual([]);
      });
    });

    it(`${dtype} -> f32 -> ${dtype} is the identity on all 65536 patterns (NaN payloads too)`, async () => {
      await withGpu(async (rt) => {
        const src = rt.upload('src', allHalves);
        const f = gpuDecodeToF32(rt, src, dtype, 65536);
        const back = new Uint16Array(await rt.read(gpuEncodeFromF32(rt, f, dtype, 65536)));
        const bad = firstMismatches(65536, (h) => (back[h] === h ? undefined : `${hex(h, 4)} came back as ${hex(back[h]!, 4)}`));
        expect(bad).toEqual([]);
      });
    });
  }

  it('decodes F32 as a copy, and odd F16 lengths', async () => {
    await withGpu(async (rt) => {
      const x = Float32Array.from({ length: 7 }, () => Math.random() - 0.5);
      expect(Array.from(await rt.readF32(gpuDecodeToF32(rt, rt.upload('x', x), 'F32', 7)))).toEqual(Array.from(x));
      const h = Uint16Array.from({ length: 7 }, () => Math.floor(Math.random() * 0x7c00));
      const got = await rt.readF32(gpuDecodeToF32(rt, rt.upload('h', h), 'F16', 7), 7);
      expect(Array.from(got)).toEqual(Array.from(h, f16BitsToNumber));
    });
  });
});

describe('encodeFromF32 (round to nearest even)', () => {
  for (const [dtype, ref] of [['F16', f32BitsToF16], ['BF16', f32BitsToBf16]] as const) {
    it(`matches the value-based reference on random bits, ties and boundaries (${dtype})`, async () => {
      await withGpu(async (rt) => {
        const cases = encodeCases(dtype);
        const n = cases.length;
        const src = rt.upload('src', cases);
        const got = new Uint16Array(await rt.read(gpuEncodeFromF32(rt, src, dtype, n)));
        const bad = firstMismatches(n, (i) => {
          const want = ref(cases[i]!);
          return got[i] === want ? undefined : `${hex(cases[i]!)} (${f32FromBits(cases[i]!)}): gpu ${hex(got[i]!, 4)} ref ${hex(want, 4)}`;
        });
        expect(bad).toEqual([]);
      });
    });
  }

  it('leaves the high half of the last word zero for odd n', async () => {
    await withGpu(async (rt) => {
      for (const dtype of ['F16', 'BF16'] as FloatDType[]) {
        const x = Float32Array.from([1.5, -2.25, 3]);
        const words = new Uint32Array(await rt.read(gpuEncodeFromF32(rt, rt.upload('x', x), dtype, 3)));
        const enc = dtype === 'F16' ? numberToF16Bits : numberToBf16Bits;
        expect(Array.from(words)).toEqual([(enc(1.5) | (enc(-2.25) << 16)) >>> 0, enc(3)]);
      }
    });
  });
});

describe('decode.ref (CPU reference self-consistency)', () => {
  it('encode(decode(h)) == h for every non-NaN half pattern, and known values', () => {
    for (let h = 0; h < 65536; h++) {
      const f = f16BitsToNumber(h);
      if (!Number.isNaN(f)) expect(numberToF16Bits(f)).toBe(h);
      const b = bf16BitsToNumber(h);
      if (!Number.isNaN(b)) expect(numberToBf16Bits(b)).toBe(h);
    }
    expect(f16BitsToNumber(0x3c00)).toBe(1);
    expect(f16BitsToNumber(0x7bff)).toBe(65504);
    expect(f16BitsToNumber(0x0001)).toBe(2 ** -24);
    expect(bf16BitsToNumber(0x3f80)).toBe(1);
    expect(numberToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie to even (down)
    expect(numberToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie to even (up)
    expect(numberToF16Bits(65520)).toBe(0x7c00);
    expect(numberToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
  });
});
