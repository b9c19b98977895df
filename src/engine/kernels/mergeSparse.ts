import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { checkBuffer, type GpuView } from '../gpu/tensor.ts';
import { dtypeCode, storageBytes, type FloatDType } from '../io/dtypes.ts';

export type SparseMask = 'none' | 'band' | 'random';
const MASK_CODE: Readonly<Record<SparseMask, number>> = { none: 0, band: 1, random: 2 };

export interface SparseRow {
  /** Factor on the kept Δ: weight (/ density for DARE, / Σ weights for normalised non-consensus). */
  coefficient: number;
  /** Weight added to the consensus divisor when this row agrees with the elected sign. */
  weight: number;
  /** DARE: keep the element when its hash is <= this u32 (reference.dareKeepThreshold). */
  keep?: number;
}

export interface SparseArgs {
  base: GpuView;
  /** (N, n) f32 Δ rows from computeDeltas. */
  deltas: GPUBuffer;
  rows: readonly SparseRow[];
  n: number;
  mask: SparseMask;
  /** mask 'band': the (N, 2, 2) state of selectAbsRanks with K = 2 (lo rank, hi rank). */
  bands?: GPUBuffer;
  consensus: boolean;
  normalize: boolean;
  lambda: number;
  seed?: number;
  tensorIndex?: number;
  outDtype: FloatDType;
  dst?: GPUBuffer;
}

const WG = 256;

/**
 * Sparsified, sign-elected task arithmetic (shaders/merge/sparse.wgsl): ties, dare_linear,
 * dare_ties, breadcrumbs. out (n) = base + λ·mixed, encoded to outDtype.
 */
export function sparseCombine(rt: GpuRuntime, a: SparseArgs): GPUBuffer {
  const N = a.rows.length;
  if (N === 0) throw new InputError('sparseCombine: no rows');
  checkBuffer(a.base.buffer, a.base.dtype, a.n, 'sparseCombine base');
  checkBuffer(a.deltas, 'F32', N * a.n, 'sparseCombine deltas');
  if (a.mask === 'band') {
    if (!a.bands) throw new InputError("sparseCombine: mask 'band' needs the selectAbsRanks state");
    checkBuffer(a.bands, 'F32', N * 4, 'sparseCombine bands');
  }
  const out = a.dst ?? rt.storage(`mergeSparse.${a.outDtype}`, storageBytes(a.outDtype, a.n));
  checkBuffer(out, a.outDtype, a.n, 'sparseCombine destination');
  if (a.n === 0) return out;
  const params = new ArrayBuffer(32);
  const pu = new Uint32Array(params);
  pu.set([a.n, N, 0, a.normalize ? 1 : 0, (a.seed ?? 0) >>> 0, (a.tensorIndex ?? 0) >>> 0, 0, 0]);
  new Float32Array(params)[2] = a.lambda;
  const rowData = new ArrayBuffer(N * 16);
  const rf = new Float32Array(rowData);
  const ru = new Uint32Array(rowData);
  a.rows.forEach((r, i) => {
    rf[4 * i] = r.coefficient;
    rf[4 * i + 1] = r.weight;
    ru[4 * i + 2] = (r.keep ?? 0xffffffff) >>> 0;
  });
  const pbuf = rt.uniform('mergeSparse.params', new Uint8Array(params));
  const rbuf = rt.upload('mergeSparse.rows', new Uint8Array(rowData));
  const wg = rt.workgroupSize(WG);
  const pipeline = rt.pipeline('merge/sparse', {
    WG: wg,
    BASE_DT: dtypeCode(a.base.dtype),
    OUT_DT: dtypeCode(a.outDtype),
    MASK: MASK_CODE[a.mask],
    CONSENSUS: a.consensus ? 1 : 0,
  });
  const words = a.outDtype === 'F32' ? a.n : Math.ceil(a.n / 2);
  rt.dispatch(pipeline, [a.base.buffer, a.deltas, rbuf, a.bands ?? rbuf, out, pbuf], rt.grid1d(words, wg));
  rt.release(pbuf, rbuf);
  return out;
}
