import type { FloatDType } from '../io/dtypes.ts';

/**
 * Plain-TS reference for F16/BF16 <-> F32, written from values (powers of two, round half to
 * even on a scaled significand) rather than from the bit tricks of shaders/common/dtype.wgsl,
 * so the two are independent. NaN needs bits: the payload rule is the WGSL one (keep the top
 * payload bits, quiet only when they are all zero).
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

export function bitsFromF32(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

export function bf16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 255) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** -133;
  return sign * (1 + m / 128) * 2 ** (e - 127);
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Exponent e with 2^e <= a < 2^(e+1), a > 0 finite. */
function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  else if (2 ** (e + 1) <= a) e += 1;
  return e;
}

/** A binary format with `mant` stored significand bits and exponent range [emin, emax]. */
function encodeValue(x: number, mant: number, emin: number, emax: number, bias: number): number {
  const expMask = (1 << (15 - mant)) - 1;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  const inf = sign | (expMask << mant);
  if (a === Infinity) return inf;
  if (a < 2 ** emin) {
    // Subnormal (or zero) in units of 2^(emin - mant); reaching 2^mant is the smallest normal.
    return sign | roundHalfEven(a / 2 ** (emin - mant));
  }
  let e = exponentOf(a);
  let m = roundHalfEven((a / 2 ** e - 1) * 2 ** mant);
  if (m === 2 ** mant) {
    m = 0;
    e += 1;
  }
  if (e > emax) return inf;
  return sign | ((e + bias) << mant) | m;
}

/** RNE of any number (float64 too: rounded once, directly) to binary16 bits. */
export function numberToF16Bits(x: number): number {
  return Number.isNaN(x) ? 0x7e00 : encodeValue(x, 10, -14, 15, 15);
}

export function numberToBf16Bits(x: number): number {
  return Number.isNaN(x) ? 0x7fc0 : encodeValue(x, 7, -126, 127, 127);
}

/** f32 bits -> f16 bits, with the WGSL NaN payload rule. */
export function f32BitsToF16(bits: number): number {
  const a = bits & 0x7fffffff;
  if (a > 0x7f800000) {
    const m = (a >>> 13) & 0x3ff;
    return ((bits >>> 16) & 0x8000) | 0x7c00 | (m === 0 ? 0x200 : m);
  }
  return numberToF16Bits(f32FromBits(bits));
}

export function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) {
    const top = bits >>> 16;
    return top | ((top & 0x7f) === 0 ? 0x40 : 0);
  }
  return numberToBf16Bits(f32FromBits(bits));
}

/** The value `x` becomes when stored as `dtype` (RNE, one rounding). */
export function roundTo(dtype: FloatDType, x: number): number {
  if (dtype === 'F32') return Math.fround(x);
  if (dtype === 'F16') return f16BitsToNumber(numberToF16Bits(x));
  return bf16BitsToNumber(numberToBf16Bits(x));
}

/** Little-endian bytes of `values` stored as `dtype` (RNE), padded to whole u32 words. */
export function encodeArray(values: ArrayLike<number>, dtype: FloatDType): Uint8Array {
  const n = values.length;
  if (dtype === 'F32') return new Uint8Array(Float32Array.from(values).buffer);
  const out = new Uint16Array(Math.ceil(n / 2) * 2);
  const enc = dtype === 'F16' ? numberToF16Bits : numberToBf16Bits;
  for (let i = 0; i < n; i++) out[i] = enc(values[i]!);
  return new Uint8Array(out.buffer);
}

/** Values of `n` elements of `dtype` in little-endian `bytes`. */
export function decodeArray(bytes: ArrayBuffer | Uint8Array, dtype: FloatDType, n: number): Float64Array {
  const buf = bytes instanceof Uint8Array ? bytes.slice().buffer : bytes;
  const out = new Float64Array(n);
  if (dtype === 'F32') {
    out.set(new Float32Array(buf, 0, n));
    return out;
  }
  const h = new Uint16Array(buf, 0, n);
  const dec = dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber;
  for (let i = 0; i < n; i++) out[i] = dec(h[i]!);
  return out;
}

/** Raw element bit patterns (16 or 32 bits) of `n` elements of `dtype`. */
export function elementBits(bytes: ArrayBuffer | Uint8Array, dtype: FloatDType, n: number): Uint32Array {
  const buf = bytes instanceof Uint8Array ? bytes.slice().buffer : bytes;
  return dtype === 'F32' ? new Uint32Array(buf, 0, n).slice() : Uint32Array.from(new Uint16Array(buf, 0, n));
}
