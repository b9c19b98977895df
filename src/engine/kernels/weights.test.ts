import { describe, expect, it } from 'vitest';
import { bf16BitsToNumber, decodeWeights, encodeWeights, f16BitsToNumber, numberToBf16Bits, numberToF16Bits } from './weights.ts';

describe('weight dtype codecs (CPU side of weights.wgsl)', () => {
  it('round-trips every finite F16 and BF16 bit pattern', () => {
    for (let h = 0; h < 0x10000; h++) {
      const e = (h >> 10) & 0x1f;
      if (e !== 31 && !(h === 0x8000)) expect(numberToF16Bits(f16BitsToNumber(h))).toBe(h);
      const be = (h >> 7) & 0xff;
      if (be !== 255 && h !== 0x8000) expect(numberToBf16Bits(bf16BitsToNumber(h))).toBe(h);
    }
  });

  it('rounds to nearest even and knows known values', () => {
    expect(numberToF16Bits(1)).toBe(0x3c00);
    expect(numberToF16Bits(-2)).toBe(0xc000);
    expect(numberToF16Bits(65504)).toBe(0x7bff);
    expect(numberToF16Bits(1e6)).toBe(0x7c00);
    expect(numberToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(numberToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(numberToBf16Bits(1)).toBe(0x3f80);
    expect(bf16BitsToNumber(0xc040)).toBe(-3);
    const v = Float64Array.from([0.1, -3.5, 1e-6, 123.456]);
    expect(Array.from(decodeWeights(encodeWeights(v, 'F32'), 'F32'))).toEqual(Array.from(Float32Array.from(v)));
  });
});
