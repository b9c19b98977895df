import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { checkBuffer, viewBinding, type GpuView } from '../gpu/tensor.ts';
import { dtypeCode } from '../io/dtypes.ts';

const WG = 256;

/** One LoRA update's factors and shape (shaders/lora/delta.wgsl). */
export interface LoraFactors {
  /** (r, in) and (out, r) in their stored dtypes. */
  a: GpuView;
  b: GpuView;
  rank: number;
  out: number;
  in: number;
  /** s (MODE 0) or c·s (an accumulated update). */
  scale: number;
  /** The matrix is stored (in, out) (Conv1D): element (o, i) at i·out + o. */
  transposed: boolean;
}

export interface LoraDeltaOptions {
  /** 'set': dst = θ + s·B A (or s·B A without `base`); 'add': dst += s·B A. */
  mode: 'set' | 'add';
  /** θ in its stored dtype (mode 'set'). */
  base?: GpuView;
  /** f32 destination (default: a new (out·in) buffer) and the element it starts at (a packed row). */
  dst?: GPUBuffer;
  dstOffset?: number;
}

/**
 * Dense s · B A of one adapted matrix, in f32 in the base's element order, from the factors on
 * the GPU: the adapted weight (θ + Δ) a merge reads like a fine-tune's, a packed Δ row, or an
 * update added onto a merged tensor. Returns the destination.
 */
export function loraDelta(rt: GpuRuntime, f: LoraFactors, options: LoraDeltaOptions): GPUBuffer {
  const n = f.out * f.in;
  if (!Number.isInteger(f.rank) || f.rank < 1) throw new InputError(`loraDelta: rank ${f.rank} is not a positive integer`);
  const a = viewBinding(f.a, f.rank * f.in, 'loraDelta A');
  const b = viewBinding(f.b, f.out * f.rank, 'loraDelta B');
  if (options.mode === 'add' && options.base) throw new InputError('loraDelta: mode add takes no base');
  const base = options.base && viewBinding(options.base, n, 'loraDelta base');
  const offset = options.dstOffset ?? 0;
  const dst = options.dst ?? rt.storage('loraDelta.out', n * 4);
  checkBuffer(dst, 'F32', offset + n, 'loraDelta destination');
  if (n === 0) return dst;
  const wg = rt.workgroupSize(WG);
  const params = new ArrayBuffer(24);
  new Uint32Array(params, 0, 5).set([n, f.out, f.in, f.rank, offset]);
  new Float32Array(params, 20, 1)[0] = f.scale;
  const uniform = rt.uniform('loraDelta.params', new Uint8Array(params));
  const pipeline = rt.pipeline('lora/delta', {
    WG: wg,
    A_DT: dtypeCode(f.a.dtype),
    B_DT: dtypeCode(f.b.dtype),
    BASE_DT: dtypeCode(options.base?.dtype ?? 'F32'),
    HAS_BASE: base ? 1 : 0,
    TRANSPOSED: f.transposed ? 1 : 0,
    MODE: options.mode === 'add' ? 1 : 0,
  });
  const encoder = rt.device.createCommandEncoder({ label: 'loraDelta.encoder' });
  rt.dispatch(pipeline, [uniform, a, b, base ?? a, dst], rt.grid1d(n, wg), encoder);
  rt.device.queue.submit([encoder.finish()]);
  rt.release(uniform);
  return dst;
}
