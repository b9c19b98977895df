import type { Bindable } from '../gpu/runtime.ts';
import { decodeToF32, encodeFromF32, f32Bits } from '../io/dtypes.ts';
import { DTYPE_CODE } from './decode.ts';

/**
 * Model kernels read checkpoint tensors as their raw stored bytes (array<u32> words, F16/BF16
 * two per word, little-endian) and decode them in WGSL with shaders/common/dtype.wgsl. The CPU
 * codec is io/dtypes.ts, so float64 references see bit-identical weight values.
 */
export type WeightDtype = 'F32' | 'F16' | 'BF16';

/** Override-constant code for a dtype (DT_* in shaders/common/dtype.wgsl). */
export function dtypeCode(dtype: WeightDtype): number {
  return DTYPE_CODE[dtype];
}

export function dtypeBytes(dtype: WeightDtype): number {
  return dtype === 'F32' ? 4 : 2;
}

/** A weight tensor on the GPU: raw stored bytes (padded to 4) and how to decode them. */
export interface WeightRef {
  buffer: Bindable;
  dtype: WeightDtype;
}

/** Bit pattern of `x` rounded to f32, for packing f32 fields into u32 uniform arrays. */
export { f32Bits };

/** Encodes values as the raw bytes a checkpoint would store for `dtype`. */
export function encodeWeights(values: ArrayLike<number>, dtype: WeightDtype): Uint8Array {
  return encodeFromF32(values, dtype);
}

/** Decodes raw stored bytes of `dtype` into float64 values (exact). */
export function decodeWeights(bytes: Uint8Array, dtype: WeightDtype): Float64Array {
  return Float64Array.from(decodeToF32(bytes, dtype));
}
