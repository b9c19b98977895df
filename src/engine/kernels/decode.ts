import type { GpuRuntime } from '../gpu/runtime.ts';
import { checkBuffer } from '../gpu/tensor.ts';
import { dtypeCode, storageBytes, type FloatDType } from '../io/dtypes.ts';

/**
 * Whole-tensor dtype conversion on the GPU (shaders/common/decode.wgsl): F16/BF16 words -> f32
 * and back with round-to-nearest-even, the same bits as the CPU codec in io/dtypes.ts. Merge
 * kernels decode inline through shaders/common/dtype.wgsl; these are for tensors a kernel wants
 * as plain f32 (slerp's reductions) and for tests.
 */
const WG = 256;

function run(rt: GpuRuntime, entry: 'decode' | 'encode', src: GPUBuffer, dst: GPUBuffer, dtype: FloatDType, n: number, invocations: number): void {
  const wg = rt.workgroupSize(WG);
  const params = rt.uniform(`decode.${entry}.params`, new Uint32Array([n]));
  rt.dispatch(rt.pipeline('common/decode', { WG: wg, DT: dtypeCode(dtype) }, entry), [src, dst, params], rt.grid1d(invocations, wg));
  rt.release(params);
}

function copy(rt: GpuRuntime, src: GPUBuffer, dst: GPUBuffer, bytes: number): void {
  const encoder = rt.device.createCommandEncoder({ label: 'decode.copy' });
  encoder.copyBufferToBuffer(src, 0, dst, 0, bytes);
  rt.device.queue.submit([encoder.finish()]);
}

/** (n) `dtype` -> (n) f32 on the GPU, exact (NaN payloads and subnormals kept). Returns `dst` or a new buffer. */
export function gpuDecodeToF32(rt: GpuRuntime, src: GPUBuffer, dtype: FloatDType, n: number, dst?: GPUBuffer): GPUBuffer {
  checkBuffer(src, dtype, n, 'gpuDecodeToF32 source');
  const out = dst ?? rt.storage('decode.f32', n * 4);
  checkBuffer(out, 'F32', n, 'gpuDecodeToF32 destination');
  if (n === 0) return out;
  if (dtype === 'F32') copy(rt, src, out, n * 4);
  else run(rt, 'decode', src, out, dtype, n, n);
  return out;
}

/** (n) f32 -> (n) `dtype` on the GPU, round to nearest even; odd n leaves the last word's high half 0. */
export function gpuEncodeFromF32(rt: GpuRuntime, src: GPUBuffer, dtype: FloatDType, n: number, dst?: GPUBuffer): GPUBuffer {
  checkBuffer(src, 'F32', n, 'gpuEncodeFromF32 source');
  const out = dst ?? rt.storage(`decode.${dtype}`, storageBytes(dtype, n));
  checkBuffer(out, dtype, n, 'gpuEncodeFromF32 destination');
  if (n === 0) return out;
  if (dtype === 'F32') copy(rt, src, out, n * 4);
  else run(rt, 'encode', src, out, dtype, n, Math.ceil(n / 2));
  return out;
}
