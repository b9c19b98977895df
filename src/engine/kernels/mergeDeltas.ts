import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { checkBuffer, viewBinding, type GpuView } from '../gpu/tensor.ts';
import { dtypeCode } from '../io/dtypes.ts';

const WG = 256;

/**
 * Packed distribution vectors (shaders/merge/deltas.wgsl): (N, n) f32 with row i = θ_i − θ_base,
 * each decoded exactly from its own dtype and subtracted in f32 (exact whenever θ_i/2 <= θ <= 2θ_i,
 * Sterbenz, and for F16/BF16 whenever their exponents differ by at most 12/15). Without a base the
 * rows are the decoded models themselves (linear, slerp). This is the resident buffer the
 * interactive combine kernels read; `dst` reuses one.
 */
export function computeDeltas(rt: GpuRuntime, base: GpuView | undefined, models: readonly GpuView[], n: number, dst?: GPUBuffer): GPUBuffer {
  const N = models.length;
  if (N === 0) throw new InputError('computeDeltas: no models');
  const baseBinding = base && viewBinding(base, n, 'computeDeltas base');
  const modelBindings = models.map((m, i) => viewBinding(m, n, `computeDeltas model ${i}`));
  const out = dst ?? rt.storage('mergeDeltas.packed', N * n * 4);
  checkBuffer(out, 'F32', N * n, 'computeDeltas destination');
  if (n === 0) return out;
  const wg = rt.workgroupSize(WG);
  const encoder = rt.device.createCommandEncoder({ label: 'mergeDeltas.encoder' });
  const params: GPUBuffer[] = [];
  models.forEach((m, row) => {
    const p = rt.uniform(`mergeDeltas.params${row}`, new Uint32Array([n, row]));
    params.push(p);
    const pipeline = rt.pipeline('merge/deltas', {
      WG: wg,
      X_DT: dtypeCode(m.dtype),
      BASE_DT: dtypeCode(base?.dtype ?? 'F32'),
      HAS_BASE: base ? 1 : 0,
    });
    rt.dispatch(pipeline, [modelBindings[row]!, baseBinding ?? modelBindings[row]!, out, p], rt.grid1d(n, wg), encoder);
  });
  rt.device.queue.submit([encoder.finish()]);
  rt.release(...params);
  return out;
}

/**
 * Elements per chunk of packed Δ for N models: all n when (N, n) f32 fits one binding, else the
 * most that do, in whole multiples of the storage offset alignment (in elements, so that chunk
 * offsets are aligned for F32 and 16-bit tensors alike).
 */
export function deltaChunkElements(limits: Pick<GPUSupportedLimits, 'maxBufferSize' | 'maxStorageBufferBindingSize' | 'minStorageBufferOffsetAlignment'>, N: number, n: number): number {
  const max = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  if (N * n * 4 <= max) return n;
  const unit = Math.max(4, limits.minStorageBufferOffsetAlignment);
  return Math.floor(max / (4 * N) / unit) * unit;
}
