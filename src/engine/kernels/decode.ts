import { InputError } from '../errors.ts';
import type { Bindable, GpuRuntime } from '../gpu/runtime.ts';

/**
 * Whole-tensor dtype conversion on the GPU (shaders/common/decode.wgsl): F16/BF16 words ->
 * f32 and back with round-to-nearest-even. Merge kernels decode inline through
 * shaders/common/dtype.wgsl; these are for tensors a kernel wants as plain f32 (slerp's
 * reductions, the resident model rows) and for tests.
 */
export type DType = 'F32' | 'F16' | 'BF16';

export const DTYPES: readonly DType[] = ['F32', 'F16', 'BF16'];

/** The `DT_*` codes of shaders/common/dtype.wgsl. */
export const DTYPE_CODE: Readonly<Record<DType, number>> = { F32: 0, F16: 1, BF16: 2 };

export function bytesPerElement(dtype: DType): number {
  return dtype === 'F32' ? 4 : 2;
}

/** Bytes a buffer of `n` elements of `dtype` occupies (padded to whole u32 words). */
export function storageBytes(dtype: DType, n: number): number {
  return Math.max(4, Math.ceil((n * bytesPerElement(dtype)) / 4) * 4);
}

/**
 * The binding of `n` elements of `dtype` that start `offset` elements into `buffer`: the whole
 * buffer when offset is 0 (as every whole-tensor kernel binds it), else a range whose byte offset
 * must be a multiple of the device's minStorageBufferOffsetAlignment (the caller's chunking).
 */
export function elementRange(buffer: GPUBuffer, dtype: DType, n: number, offset: number, what: string): Bindable {
  if (!offset) {
    checkBuffer(buffer, dtype, n, what);
    return buffer;
  }
  const begin = offset * bytesPerElement(dtype);
  const size = storageBytes(dtype, n);
  if (!Number.isInteger(offset) || offset < 0 || begin % 4 !== 0 || begin + size > buffer.size) {
    throw new InputError(`${what}: elements [${offset}, ${offset + n}) of ${dtype} do not fit buffer '${buffer.label}' of ${buffer.size} bytes`);
  }
  return { buffer, offset: begin, size };
}

/** Throws InputError when `buffer` cannot hold `n` elements of `dtype`. */
export function checkBuffer(buffer: GPUBuffer, dtype: DType, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw new InputError(`${what}: element count ${n} is not a non-negative integer`);
  if (buffer.size < n * bytesPerElement(dtype)) {
    throw new InputError(`${what}: buffer '${buffer.label}' has ${buffer.size} bytes, needs ${n * bytesPerElement(dtype)} for ${n} ${dtype} elements`);
  }
}

const WG = 256;

function run(rt: GpuRuntime, entry: 'decode' | 'encode', src: GPUBuffer, dst: GPUBuffer, dtype: DType, n: number, invocations: number): void {
  const wg = rt.workgroupSize(WG);
  const params = rt.uniform(`decode.${entry}.params`, new Uint32Array([n]));
  rt.dispatch(rt.pipeline('common/decode', { WG: wg, DT: DTYPE_CODE[dtype] }, entry), [src, dst, params], rt.grid1d(invocations, wg));
  rt.release(params);
}

function copy(rt: GpuRuntime, src: GPUBuffer, dst: GPUBuffer, bytes: number): void {
  const encoder = rt.device.createCommandEncoder({ label: 'decode.copy' });
  encoder.copyBufferToBuffer(src, 0, dst, 0, bytes);
  rt.device.queue.submit([encoder.finish()]);
}

/** (n) `dtype` -> (n) f32, exact (NaN payloads and subnormals kept). Returns `dst` or a new buffer. */
export function decodeToF32(rt: GpuRuntime, src: GPUBuffer, dtype: DType, n: number, dst?: GPUBuffer): GPUBuffer {
  checkBuffer(src, dtype, n, 'decodeToF32 source');
  const out = dst ?? rt.storage('decode.f32', n * 4);
  checkBuffer(out, 'F32', n, 'decodeToF32 destination');
  if (n === 0) return out;
  if (dtype === 'F32') copy(rt, src, out, n * 4);
  else run(rt, 'decode', src, out, dtype, n, n);
  return out;
}

/** (n) f32 -> (n) `dtype`, round to nearest even; odd n leaves the last word's high half 0. */
export function encodeFromF32(rt: GpuRuntime, src: GPUBuffer, dtype: DType, n: number, dst?: GPUBuffer): GPUBuffer {
  checkBuffer(src, 'F32', n, 'encodeFromF32 source');
  const out = dst ?? rt.storage(`decode.${dtype}`, storageBytes(dtype, n));
  checkBuffer(out, dtype, n, 'encodeFromF32 destination');
  if (n === 0) return out;
  if (dtype === 'F32') copy(rt, src, out, n * 4);
  else run(rt, 'encode', src, out, dtype, n, Math.ceil(n / 2));
  return out;
}
