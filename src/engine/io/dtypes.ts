/**
 * safetensors element types and exact float conversions.
 *
 * Names and sizes follow the safetensors format (huggingface/safetensors `Dtype`). All byte
 * data is little-endian, as the format requires. f32 -> f16 / bf16 rounds to nearest, ties to
 * even, like `torch.Tensor.to(torch.float16 / torch.bfloat16)`; NaN stays NaN (quiet, payload
 * truncated), ±Inf stays ±Inf, overflow goes to ±Inf and f16 subnormals are produced exactly.
 */
import { SafetensorsError } from '../errors.ts';

export const DTYPES = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
] as const;
export type DType = (typeof DTYPES)[number];

const SIZES: Record<DType, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(SIZES, value);
}

/** Bytes per element. */
export function dtypeSize(dtype: DType): number {
  return SIZES[dtype];
}

/**
 * The float dtypes the GPU kernels read (decoded from u32 words in WGSL, shaders/common/dtype.wgsl)
 * and write; every other stored dtype is copied through untouched.
 */
export const FLOAT_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type FloatDType = (typeof FLOAT_DTYPES)[number];

/** Names recipes, mergekit YAML and config.json's torch_dtype use for the float dtypes. */
export const FLOAT_DTYPE_NAMES = ['float32', 'float16', 'bfloat16'] as const;
export type FloatDTypeName = (typeof FLOAT_DTYPE_NAMES)[number];

interface FloatInfo {
  /** The DT_* override code of shaders/common/dtype.wgsl. */
  code: number;
  name: FloatDTypeName;
  /** The CLI's short spelling. */
  short: string;
}
const FLOAT_INFO: Readonly<Record<FloatDType, FloatInfo>> = {
  F32: { code: 0, name: 'float32', short: 'f32' },
  F16: { code: 1, name: 'float16', short: 'f16' },
  BF16: { code: 2, name: 'bfloat16', short: 'bf16' },
};

export function isFloatDType(dtype: unknown): dtype is FloatDType {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}

/** The shader's DT_* code for a float dtype (an override constant of the kernels). */
export function dtypeCode(dtype: FloatDType): number {
  return FLOAT_INFO[dtype].code;
}

/** 'float32' | 'float16' | 'bfloat16'. */
export function dtypeName(dtype: FloatDType): FloatDTypeName {
  return FLOAT_INFO[dtype].name;
}

/**
 * The float dtype a name denotes: recipe/torch names ('bfloat16', 'torch.bfloat16'), the CLI's
 * short ones ('bf16') or safetensors' own ('BF16'); undefined for anything else.
 */
export function dtypeFromName(name: string): FloatDType | undefined {
  const n = name.trim().replace(/^torch\./, '');
  return FLOAT_DTYPES.find((d) => d === n.toUpperCase() || FLOAT_INFO[d].name === n.toLowerCase() || FLOAT_INFO[d].short === n.toLowerCase());
}

/**
 * The float dtype most of a checkpoint's elements are stored in (its output dtype when a merge
 * names none), or undefined when it has no float tensors.
 */
export function dominantFloatDtype(tensors: Iterable<{ dtype: string; shape: readonly number[] }>): FloatDType | undefined {
  const count = new Map<FloatDType, number>();
  for (const t of tensors) if (isFloatDType(t.dtype)) count.set(t.dtype, (count.get(t.dtype) ?? 0) + t.shape.reduce((a, b) => a * b, 1));
  let best: FloatDType | undefined;
  for (const [d, c] of count) if (best === undefined || c > count.get(best)!) best = d;
  return best;
}

/** Bytes a GPU buffer of `n` elements of `dtype` occupies (padded to whole u32 words). */
export function storageBytes(dtype: FloatDType, n: number): number {
  return Math.max(4, Math.ceil((n * dtypeSize(dtype)) / 4) * 4);
}

// One scratch word shared by the scalar conversions (reinterpret f32 <-> u32).
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The u32 bit pattern of `x` rounded to f32. */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

export function f32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0]!;
}

/** The largest finite f32, (2 − 2⁻²³)·2¹²⁷: a recipe number beyond it would be ±Inf on the GPU. */
export const F32_MAX = 3.4028234663852886e38;

/** u32 f32 bit pattern -> u16 f16 bit pattern, round to nearest even. */
function f32BitsToF16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  if (e >= 1) {
    let h = sign | (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    // A carry out of the mantissa bumps the exponent, up to 0x7c00 (Inf): exactly right.
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1;
    return h;
  }
  // f16 subnormal (or zero): value = m * 2^(exp-150) in units of 2^-24 is m >> (126 - exp).
  if (exp === 0) return sign; // f32 subnormals are < 2^-126, far below half of 2^-24
  const m = mant | 0x800000;
  const shift = 14 - e;
  if (shift >= 25) return sign; // < 2^-25 (m < 2^24), rounds to zero
  let h = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (h & 1) === 1)) h += 1;
  return sign | h;
}

/** u32 f32 bit pattern -> u16 bf16 bit pattern, round to nearest even. */
function f32BitsToBf16Bits(b: number): number {
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff;
  return Math.floor((b + 0x7fff + ((b >>> 16) & 1)) / 65536) & 0xffff;
}

/** Rounds `x` to f32 first (as a Float32Array store does), then to f16 bits. */
export function f32ToF16(x: number): number {
  return f32BitsToF16Bits(f32Bits(x));
}

/** Rounds `x` to f32 first, then to bf16 bits. */
export function f32ToBf16(x: number): number {
  return f32BitsToBf16Bits(f32Bits(x));
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) {
    if (mant === 0) return sign * Infinity;
    // Keep the payload: f32 NaN with the f16 mantissa in the top bits.
    return f32FromBits(((h & 0x8000) << 16) | 0x7f800000 | (mant << 13));
  }
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function bf16ToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

let f16Table: Float32Array | undefined;
/** All 65536 f16 values as f32, built on first use. */
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

function f8e4m3ToF32(v: number): number {
  // E4M3FN (OCP): bias 7, no Inf, S.1111.111 is NaN.
  const sign = v & 0x80 ? -1 : 1;
  const exp = (v >>> 3) & 0xf;
  const mant = v & 7;
  if (exp === 0xf && mant === 7) return NaN;
  if (exp === 0) return sign * mant * 2 ** -9;
  return sign * (1 + mant / 8) * 2 ** (exp - 7);
}

function f8e5m2ToF32(v: number): number {
  // E5M2: the top byte of an f16.
  return f16ToF32(v << 8);
}

/** `bytes` as u16 elements, copying only when the offset is misaligned. */
function u16View(bytes: Uint8Array, n: number): Uint16Array {
  return bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, n) : new Uint16Array(bytes.slice().buffer, 0, n);
}

function checkLength(bytes: Uint8Array, dtype: DType): number {
  const size = dtypeSize(dtype);
  if (bytes.byteLength % size !== 0) {
    throw new SafetensorsError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements (${size} bytes each)`);
  }
  return bytes.byteLength / size;
}

/** Little-endian `bytes` of `dtype` -> f32 values (integers and bools converted by value). */
export function decodeToF32(bytes: Uint8Array, dtype: DType): Float32Array {
  const n = checkLength(bytes, dtype);
  const out = new Float32Array(n);
  if (!LITTLE_ENDIAN) {
    decodeWithDataView(bytes, dtype, out);
    return out;
  }
  switch (dtype) {
    case 'F32':
      out.set(bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, n) : new Float32Array(bytes.slice().buffer, 0, n));
      return out;
    case 'F16': {
      const table = f16ToF32Table();
      const src = u16View(bytes, n);
      for (let i = 0; i < n; i++) out[i] = table[src[i]!]!;
      return out;
    }
    case 'BF16': {
      const src = u16View(bytes, n);
      const words = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) words[i] = src[i]! << 16;
      return out;
    }
    default:
      decodeWithDataView(bytes, dtype, out);
      return out;
  }
}

function decodeWithDataView(bytes: Uint8Array, dtype: DType, out: Float32Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = out.length;
  for (let i = 0; i < n; i++) {
    let v: number;
    switch (dtype) {
      case 'F64': v = view.getFloat64(i * 8, true); break;
      case 'F32': v = view.getFloat32(i * 4, true); break;
      case 'F16': v = f16ToF32(view.getUint16(i * 2, true)); break;
      case 'BF16': v = bf16ToF32(view.getUint16(i * 2, true)); break;
      case 'I64': v = Number(view.getBigInt64(i * 8, true)); break;
      case 'U64': v = Number(view.getBigUint64(i * 8, true)); break;
      case 'I32': v = view.getInt32(i * 4, true); break;
      case 'U32': v = view.getUint32(i * 4, true); break;
      case 'I16': v = view.getInt16(i * 2, true); break;
      case 'U16': v = view.getUint16(i * 2, true); break;
      case 'I8': v = view.getInt8(i); break;
      case 'U8': v = view.getUint8(i); break;
      case 'BOOL': v = view.getUint8(i) === 0 ? 0 : 1; break;
      case 'F8_E4M3': v = f8e4m3ToF32(view.getUint8(i)); break;
      case 'F8_E5M2': v = f8e5m2ToF32(view.getUint8(i)); break;
    }
    out[i] = v;
  }
}

/** f32 values -> little-endian bytes of `dtype` (F32, F16, BF16 or F64). */
export function encodeFromF32(values: Float32Array | ArrayLike<number>, dtype: DType): Uint8Array {
  const src = values instanceof Float32Array ? values : Float32Array.from(values);
  const n = src.length;
  const out = new Uint8Array(n * dtypeSize(dtype));
  const view = new DataView(out.buffer);
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN) out.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
      else for (let i = 0; i < n; i++) view.setFloat32(i * 4, src[i]!, true);
      return out;
    case 'F64':
      for (let i = 0; i < n; i++) view.setFloat64(i * 8, src[i]!, true);
      return out;
    case 'F16':
    case 'BF16': {
      const bits = new Uint32Array(src.buffer, src.byteOffset, n);
      const convert = dtype === 'F16' ? f32BitsToF16Bits : f32BitsToBf16Bits;
      if (LITTLE_ENDIAN) {
        const dst = new Uint16Array(out.buffer);
        for (let i = 0; i < n; i++) dst[i] = convert(bits[i]!);
      } else {
        for (let i = 0; i < n; i++) view.setUint16(i * 2, convert(bits[i]!), true);
      }
      return out;
    }
    default:
      throw new SafetensorsError(`cannot encode f32 values as ${dtype}: only F32, F16, BF16 and F64 are written from floats`);
  }
}
