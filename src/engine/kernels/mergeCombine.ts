import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { checkBuffer, DTYPE_CODE, storageBytes, type DType } from './decode.ts';
import type { GpuTensor } from './mergeDeltas.ts';

export interface CombineArgs {
  /** θ_base in its stored dtype; omitted for a plain weighted sum of rows (linear). */
  base?: GpuTensor;
  /** Factor on the base (1 for task arithmetic). */
  alpha?: number;
  /** (N, n) f32 rows: deltas or decoded models (computeDeltas). */
  rows: GPUBuffer;
  /** (N) factor per row, rounded once to f32. */
  coefficients: readonly number[];
  n: number;
  outDtype: DType;
  dst?: GPUBuffer;
}

const WG = 256;

/**
 * out (n) = alpha·base + Σ_r coef_r·rows[r] in f32, encoded to outDtype (shaders/merge/combine.wgsl).
 * One pass over the N rows for any N: the interactive DEM merge. A zero weighted sum returns
 * alpha·base untouched, so all-zero weights give the base bit for bit.
 */
export function combineRows(rt: GpuRuntime, a: CombineArgs): GPUBuffer {
  const N = a.coefficients.length;
  if (N === 0) throw new InputError('combineRows: no rows');
  checkBuffer(a.rows, 'F32', N * a.n, 'combineRows rows');
  if (a.base) checkBuffer(a.base.buffer, a.base.dtype, a.n, 'combineRows base');
  const out = a.dst ?? rt.storage(`mergeCombine.${a.outDtype}`, storageBytes(a.outDtype, a.n));
  checkBuffer(out, a.outDtype, a.n, 'combineRows destination');
  if (a.n === 0) return out;
  const wg = rt.workgroupSize(WG);
  const params = new ArrayBuffer(16);
  new Uint32Array(params, 0, 2).set([a.n, N]);
  new Float32Array(params, 8, 1)[0] = a.alpha ?? 1;
  const pbuf = rt.uniform('mergeCombine.params', new Uint8Array(params));
  const cbuf = rt.upload('mergeCombine.coef', Float32Array.from(a.coefficients));
  // n % 4 == 0: combine4.wgsl, four elements per invocation over vec4 rows (same bits, faster).
  const quads = a.n % 4 === 0;
  const pipeline = rt.pipeline(quads ? 'merge/combine4' : 'merge/combine', {
    WG: wg,
    BASE_DT: DTYPE_CODE[a.base?.dtype ?? 'F32'],
    OUT_DT: DTYPE_CODE[a.outDtype],
    HAS_BASE: a.base ? 1 : 0,
  });
  const invocations = quads ? a.n / 4 : a.outDtype === 'F32' ? a.n : Math.ceil(a.n / 2);
  rt.dispatch(pipeline, [a.base?.buffer ?? a.rows, a.rows, cbuf, out, pbuf], rt.grid1d(invocations, wg));
  rt.release(pbuf, cbuf);
  return out;
}
