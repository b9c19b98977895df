import { decodeToF32, encodeFromF32, f32Bits, type FloatDType } from '../io/dtypes.ts';

/**
 * Model kernels read checkpoint tensors as their raw stored bytes (gpu/tensor.ts WeightView) and
 * decode them in WGSL with shaders/common/dtype.wgsl. The CPU codec is io/dtypes.ts, so float64
 * references see bit-identical weight values.
 */

/** Bit pattern of `x` rounded to f32, for packing f32 fields into u32 uniform arrays. */
export { f32Bits };

/** Encodes values as the raw bytes a checkpoint would store for `dtype`. */
export function encodeWeights(values: ArrayLike<number>, dtype: FloatDType): Uint8Array {
  return encodeFromF32(values, dtype);
}

/** Decodes raw stored bytes of `dtype` into float64 values (exact). */
export function decodeWeights(bytes: Uint8Array, dtype: FloatDType): Float64Array {
  return Float64Array.from(decodeToF32(bytes, dtype));
}
