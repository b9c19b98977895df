import type { Bindable } from '../gpu/runtime.ts';

/**
 * TS twin of shaders/model/weights.wgsl: model kernels read checkpoint tensors as their raw
 * stored bytes (array<u32> words, F16/BF16 two per word, little-endian) and decode in WGSL.
 * The CPU encoders/decoders here give the float64 references bit-identical weight values.
 */
export type WeightDtype = 'F32' | 'F16' | 'BF16';

/** Override-constant code for a dtype (matches w_decode in weights.wgsl). */
export function dtypeCode(dtype: WeightDtype): number {
  return dtype === 'F32' ? 0 : dtype === 'F16' ? 1 : 2;
}

export function dtypeBytes(dtype: WeightDtype): number {
  return dtype === 'F32' ? 4 : 2;
}

/** A weight tensor on the GPU: raw stored bytes (padded to 4) and how to decode them. */
export interface WeightRef {
  buffer: Bindable;
  dtype: WeightDtype;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bit pattern of `x` rounded to f32, for packing f32 fields into u32 uniform arrays. */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Round-to-nearest-even f64 -> IEEE half bits (overflow to inf). */
export function numberToF16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const a = Math.abs(x);
  if (Number.isNaN(x)) return 0x7e00;
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -24 * 0.5) return sign;
  // Subnormal: units of 2^-24; a carry into 0x400 is the smallest normal, as it should be.
  if (a < 2 ** -14) return sign | roundHalfEven(a / 2 ** -24);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1; // log2 rounding near powers of two
  if (2 ** (e + 1) <= a) e += 1;
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e += 1;
  }
  if (e + 15 >= 31) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

function roundHalfEven(v: number): number {
  const fl = Math.floor(v);
  const frac = v - fl;
  return frac > 0.5 || (frac === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
}

export function bf16BitsToNumber(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** Round-to-nearest-even f64 -> bf16 bits (via f32, as torch does). */
export function numberToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if (Number.isNaN(f32[0]!)) return 0x7fc0;
  const lsb = (b >>> 16) & 1;
  return ((b + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** Encodes values as the raw bytes a checkpoint would store for `dtype`. */
export function encodeWeights(values: ArrayLike<number>, dtype: WeightDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(Float32Array.from(values).buffer);
  const out = new Uint16Array(values.length);
  const enc = dtype === 'F16' ? numberToF16Bits : numberToBf16Bits;
  for (let i = 0; i < values.length; i++) out[i] = enc(values[i]!);
  return new Uint8Array(out.buffer);
}

/** Decodes raw stored bytes of `dtype` into float64 values (exact). */
export function decodeWeights(bytes: Uint8Array, dtype: WeightDtype): Float64Array {
  if (dtype === 'F32') {
    const f = new Float32Array(bytes.slice().buffer, 0, bytes.byteLength / 4);
    return Float64Array.from(f);
  }
  const h = new Uint16Array(bytes.slice().buffer, 0, bytes.byteLength / 2);
  const dec = dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber;
  const out = new Float64Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = dec(h[i]!);
  return out;
}
