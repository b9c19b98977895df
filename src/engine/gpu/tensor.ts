import { InputError } from '../errors.ts';
import { dtypeSize, storageBytes, type FloatDType } from '../io/dtypes.ts';
import type { Bindable } from './runtime.ts';

/**
 * A tensor on the GPU in its stored float dtype: raw little-endian bytes (F16/BF16 two per u32
 * word, padded to whole words), decoded by the kernels (shaders/common/dtype.wgsl). `offset`
 * (elements, default 0) makes it a view into a larger buffer: a chunk of a tensor whose packed
 * distribution vectors exceed the device's largest binding.
 */
export interface GpuTensor {
  buffer: GPUBuffer;
  dtype: FloatDType;
  shape: readonly number[];
  offset?: number;
}

/** What an elementwise kernel reads of a tensor: its bytes and their dtype (the element count comes apart). */
export type GpuView = Pick<GpuTensor, 'buffer' | 'dtype' | 'offset'>;

/** What the model kernels read of a weight: a whole buffer and its dtype (shapes are the model's). */
export type WeightView = Pick<GpuTensor, 'buffer' | 'dtype'>;

/** Elements in a shape. */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Throws InputError when `buffer` cannot hold `n` elements of `dtype`. */
export function checkBuffer(buffer: GPUBuffer, dtype: FloatDType, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw new InputError(`${what}: element count ${n} is not a non-negative integer`);
  if (buffer.size < n * dtypeSize(dtype)) {
    throw new InputError(`${what}: buffer '${buffer.label}' has ${buffer.size} bytes, needs ${n * dtypeSize(dtype)} for ${n} ${dtype} elements`);
  }
}

/**
 * The binding of `n` elements of a view: the whole buffer when its offset is 0 (as every
 * whole-tensor kernel binds it), else a range whose byte offset must be a multiple of the device's
 * minStorageBufferOffsetAlignment (the caller's chunking).
 */
export function viewBinding(view: GpuView, n: number, what: string): Bindable {
  const { buffer, dtype } = view;
  const offset = view.offset ?? 0;
  if (!offset) {
    checkBuffer(buffer, dtype, n, what);
    return buffer;
  }
  const begin = offset * dtypeSize(dtype);
  const size = storageBytes(dtype, n);
  if (!Number.isInteger(offset) || offset < 0 || begin % 4 !== 0 || begin + size > buffer.size) {
    throw new InputError(`${what}: elements [${offset}, ${offset + n}) of ${dtype} do not fit buffer '${buffer.label}' of ${buffer.size} bytes`);
  }
  return { buffer, offset: begin, size };
}
