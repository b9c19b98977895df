import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../random.ts';
import { SafetensorsError } from '../errors.ts';
import { bf16ToF32, decodeToF32, DTYPES, dtypeSize, encodeFromF32, f16ToF32, f32Bits, f32FromBits, f32ToBf16, f32ToF16, isFloatDType } from './dtypes.ts';

// Independent float64 references: round-half-even on the value, with no bit manipulation.

/** 2^floor(log2(a)) for a > 0, exactly (repeated doubling/halving is exact in float64). */
function floorPow2(a: number): number {
  let p = 1;
  while (p > a) p /= 2;
  while (p * 2 <= a) p *= 2;
  return p;
}

function roundHalfEven(q: number): number {
  const f = Math.floor(q);
  const frac = q - f;
  if (frac > 0.5) return f + 1;
  if (frac < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Nearest value of a binary float with `mantBits` stored mantissa bits, min normal 2^minExp, max finite `max`. */
function refRound(x: number, mantBits: number, minExp: number, max: number): number {
  if (Number.isNaN(x)) return NaN;
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  const ulp = Math.max(floorPow2(a), 2 ** minExp) * 2 ** -mantBits;
  const r = roundHalfEven(a / ulp) * ulp;
  // Above max the next "value" would be 2^(maxExp+1): overflow to Inf.
  const rounded = r > max ? Infinity : r;
  return x < 0 ? -rounded : rounded === 0 ? 0 : rounded;
}
const refF16 = (x: number): number => refRound(x, 10, -14, 65504);
const refBf16 = (x: number): number => refRound(x, 7, -126, f32FromBits(0x7f7f0000));

function sameValue(a: number, b: number): boolean {
  return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
}

function expectAll(xs: number[], convert: (x: number) => number, decode: (h: number) => number, ref: (x: number) => number, label: string): void {
  const bad: string[] = [];
  for (const x of xs) {
    const got = decode(convert(x));
    const want = ref(x);
    if (!sameValue(got, want) && bad.length < 5) bad.push(`${label}(${x}) = ${got}, want ${want}`);
  }
  expect(bad, bad.join('\n')).toEqual([]);
}

describe('dtype table', () => {
  it('has the safetensors sizes and mergeable set', () => {
    expect(DTYPES.map((d) => [d, dtypeSize(d)])).toEqual([
      ['BOOL', 1], ['U8', 1], ['I8', 1], ['F8_E5M2', 1], ['F8_E4M3', 1], ['I16', 2], ['U16', 2], ['F16', 2],
      ['BF16', 2], ['I32', 4], ['U32', 4], ['F32', 4], ['F64', 8], ['I64', 8], ['U64', 8],
    ]);
    expect(DTYPES.filter(isFloatDType)).toEqual(['F16', 'BF16', 'F32']);
  });
});

describe('f32 -> f16 / bf16 rounding against a float64 reference', () => {
  // Every f32 exactly halfway between two adjacent f16 (resp. bf16) values: the tie cases.
  const f16Values: number[] = [];
  for (let h = 0; h < 0x7c00; h++) f16Values.push(f16ToF32(h));
  const f16Ties = f16Values.slice(1).map((v, i) => (v + f16Values[i]!) / 2);
  f16Ties.push((65504 + 65536) / 2); // the overflow tie: rounds to even = 2^16 = Inf

  it('round-trips every f16 bit pattern exactly', () => {
    for (let h = 0; h < 65536; h++) {
      const v = f16ToF32(h);
      if (Number.isNaN(v)) expect(Number.isNaN(f16ToF32(f32ToF16(v)))).toBe(true);
      else expect(f32ToF16(v)).toBe(h);
    }
  });

  it('rounds all f16 ties (normal, subnormal, overflow) to even', () => {
    expect(f16Ties.every((t) => Math.fround(t) === t)).toBe(true); // ties are f32-exact
    expectAll(f16Ties, f32ToF16, f16ToF32, refF16, 'f16');
    expectAll(f16Ties.map((t) => -t), f32ToF16, f16ToF32, refF16, 'f16');
    // Ties land on the even neighbour: mantissa LSB 0.
    for (const t of f16Ties.slice(0, 2000)) expect(f32ToF16(t) & 1).toBe(0);
    // Just above / below a tie go to the nearer neighbour.
    const near = f16Ties.flatMap((t) => [f32FromBits(f32Bits(t) + 1), f32FromBits(f32Bits(t) - 1)]);
    expectAll(near, f32ToF16, f16ToF32, refF16, 'f16');
  });

  it('handles NaN, Inf, zeros, subnormals and underflow', () => {
    expect(Number.isNaN(f16ToF32(f32ToF16(NaN)))).toBe(true);
    expect(f32ToF16(f32FromBits(0x7f800001)) & 0x7c00).toBe(0x7c00); // signalling NaN stays NaN
    expect(f32ToF16(f32FromBits(0x7f800001)) & 0x3ff).not.toBe(0);
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    expect(f32ToF16(0)).toBe(0);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65519.99)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(1e6)).toBe(0x7c00);
    expect(f32ToF16(2 ** -24)).toBe(1); // smallest subnormal
    expect(f32ToF16(2 ** -25)).toBe(0); // tie between 0 and 2^-24 -> even (0)
    expect(f32ToF16(f32FromBits(f32Bits(2 ** -25) + 1))).toBe(1);
    expect(f32ToF16(3 * 2 ** -25)).toBe(2); // tie between 1 and 2 ulps -> 2
    expect(f32ToF16(1023 * 2 ** -24 + 2 ** -25)).toBe(0x400); // rounds up into the smallest normal
    expect(f32ToF16(f32FromBits(1))).toBe(0); // f32 subnormal
    expect(f32ToF16(-f32FromBits(1))).toBe(0x8000);
  });

  it('matches the reference on 200k random f32 bit patterns', () => {
    const rand = mulberry32(7);
    const xs: number[] = [];
    for (let i = 0; i < 100_000; i++) xs.push(f32FromBits(Math.floor(rand() * 2 ** 32)));
    // Concentrate on the f16 range too: exponents 2^-26 .. 2^17.
    for (let i = 0; i < 100_000; i++) xs.push((rand() < 0.5 ? -1 : 1) * Math.fround(2 ** (rand() * 43 - 26)));
    expectAll(xs, f32ToF16, f16ToF32, refF16, 'f16');
    expectAll(xs, f32ToBf16, bf16ToF32, refBf16, 'bf16');
  });

  it('rounds all bf16 ties to even and round-trips every bf16 pattern', () => {
    const ties: number[] = [];
    for (let h = 0; h < 0x7f80; h++) ties.push(f32FromBits((h << 16) | 0x8000));
    expectAll(ties, f32ToBf16, bf16ToF32, refBf16, 'bf16');
    expectAll(ties.map((t) => -t), f32ToBf16, bf16ToF32, refBf16, 'bf16');
    for (let h = 0; h < 65536; h++) {
      const v = bf16ToF32(h);
      if (Number.isNaN(v)) expect(Number.isNaN(bf16ToF32(f32ToBf16(v)))).toBe(true);
      else expect(f32ToBf16(v)).toBe(h);
    }
    expect(f32ToBf16(f32FromBits(0x7f7fffff))).toBe(0x7f80); // max f32 overflows to Inf
    expect(f32ToBf16(-Infinity)).toBe(0xff80);
    expect(Number.isNaN(bf16ToF32(f32ToBf16(f32FromBits(0x7f800001))))).toBe(true); // payload only in low bits
    expect(f32ToBf16(f32FromBits(1))).toBe(0); // subnormal tie-free round to 0
    expect(f32ToBf16(f32FromBits(0x8000))).toBe(0); // subnormal tie -> even
    expect(f32ToBf16(f32FromBits(0x18000))).toBe(2);
  });
});

describe('bulk encode / decode', () => {
  const rand = mulberry32(11);
  const values = Float32Array.from({ length: 1001 }, () => (rand() - 0.5) * 10);

  it('round-trips F32 and F64 exactly and F16/BF16 to the rounded values', () => {
    expect(decodeToF32(encodeFromF32(values, 'F32'), 'F32')).toEqual(values);
    expect(decodeToF32(encodeFromF32(values, 'F64'), 'F64')).toEqual(values);
    expect(Array.from(decodeToF32(encodeFromF32(values, 'F16'), 'F16'))).toEqual(Array.from(values, (v) => refF16(v)));
    expect(Array.from(decodeToF32(encodeFromF32(values, 'BF16'), 'BF16'))).toEqual(Array.from(values, (v) => refBf16(v)));
  });

  it('writes little-endian bytes', () => {
    expect(Array.from(encodeFromF32([1], 'F32'))).toEqual([0, 0, 0x80, 0x3f]);
    expect(Array.from(encodeFromF32([1], 'F16'))).toEqual([0, 0x3c]);
    expect(Array.from(encodeFromF32([1], 'BF16'))).toEqual([0x80, 0x3f]);
    expect(Array.from(encodeFromF32([-2], 'F64'))).toEqual([0, 0, 0, 0, 0, 0, 0, 0xc0]);
  });

  it('decodes from misaligned views', () => {
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const bytes = encodeFromF32(values, dtype);
      const shifted = new Uint8Array(bytes.byteLength + 1);
      shifted.set(bytes, 1);
      expect(decodeToF32(shifted.subarray(1), dtype)).toEqual(decodeToF32(bytes, dtype));
    }
  });

  it('decodes integer, bool and f8 types by value', () => {
    expect(Array.from(decodeToF32(Uint8Array.of(0xff, 0x7f), 'I8'))).toEqual([-1, 127]);
    expect(Array.from(decodeToF32(Uint8Array.of(0xff, 0x7f), 'U8'))).toEqual([255, 127]);
    expect(Array.from(decodeToF32(Uint8Array.of(0, 1, 2), 'BOOL'))).toEqual([0, 1, 1]);
    expect(Array.from(decodeToF32(Uint8Array.of(0xfe, 0xff), 'I16'))).toEqual([-2]);
    expect(Array.from(decodeToF32(Uint8Array.of(0xfe, 0xff, 0xff, 0xff), 'I32'))).toEqual([-2]);
    expect(Array.from(decodeToF32(Uint8Array.of(5, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 'I64'))).toEqual([5, -1]);
    expect(Array.from(decodeToF32(Uint8Array.of(0x38, 0x7e, 0x7f, 0x01), 'F8_E4M3'))).toEqual([1, 448, NaN, 2 ** -9]);
    expect(Array.from(decodeToF32(Uint8Array.of(0x3c, 0x7c, 0x01), 'F8_E5M2'))).toEqual([1, Infinity, 2 ** -16]);
  });

  it('rejects ragged byte counts and unencodable dtypes with SafetensorsError', () => {
    expect(() => decodeToF32(new Uint8Array(3), 'F16')).toThrow(SafetensorsError);
    expect(() => encodeFromF32([1], 'I32')).toThrow(SafetensorsError);
  });
});
