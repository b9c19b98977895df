import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { checkBuffer, viewBinding, type GpuView } from '../gpu/tensor.ts';
import { dtypeCode, storageBytes, type FloatDType } from '../io/dtypes.ts';
import { baseBinding, rowsBindings, rowsConstants, type RowChunk, type TensorRows } from './mergeRows.ts';

export type SparseMask = 'none' | 'band' | 'random';
const MASK_CODE: Readonly<Record<SparseMask, number>> = { none: 0, band: 1, random: 2 };

export interface SparseRow {
  /** Factor on the kept Δ: weight · rescale (/ Σ weights for normalised non-consensus). */
  coefficient: number;
  /** Weight added to the consensus divisor when this row agrees with the elected sign. */
  weight: number;
  /** DARE: keep the element when its hash is <= this u32 (reference.dareKeepThreshold). */
  keep?: number;
}

/** What decides which Δ elements are kept: the mask, the select state (band), DARE's keys (random). */
export interface SparseMaskArgs {
  mask: SparseMask;
  /** mask 'band': the (N, 2, 4) state of selectKeys with K = 2 (lo rank, hi rank). */
  bands?: GPUBuffer;
  seed?: number;
  tensorIndex?: number;
}

export interface SparseArgs extends SparseMaskArgs {
  /** θ_base (the whole tensor; the chunk's offset picks its elements). */
  base: GpuView;
  chunk: RowChunk;
  rows: readonly SparseRow[];
  consensus: boolean;
  normalize: boolean;
  lambda: number;
  outDtype: FloatDType;
  /** Output for the whole tensor; the chunk is written at its offset. */
  dst?: GPUBuffer;
}

const WG = 256;
const L1_PER = 4; // elements per invocation of the l1 entry, as in shaders/merge/sparse.wgsl

function paramsBuffer(rt: GpuRuntime, a: { n: number; N: number; lambda: number; normalize: boolean; seed?: number; tensorIndex?: number; offset: number; group0?: number; groups?: number }): GPUBuffer {
  const params = new ArrayBuffer(48);
  const pu = new Uint32Array(params);
  pu.set([a.n, a.N, 0, a.normalize ? 1 : 0, (a.seed ?? 0) >>> 0, (a.tensorIndex ?? 0) >>> 0, a.offset, a.group0 ?? 0, a.groups ?? 0]);
  new Float32Array(params)[2] = a.lambda;
  return rt.uniform('mergeSparse.params', new Uint8Array(params));
}

function rowsBuffer(rt: GpuRuntime, rows: readonly SparseRow[]): GPUBuffer {
  const rowData = new ArrayBuffer(rows.length * 16);
  const rf = new Float32Array(rowData);
  const ru = new Uint32Array(rowData);
  rows.forEach((r, i) => {
    rf[4 * i] = r.coefficient;
    rf[4 * i + 1] = r.weight;
    ru[4 * i + 2] = (r.keep ?? 0xffffffff) >>> 0;
  });
  return rt.upload('mergeSparse.rows', new Uint8Array(rowData));
}

function checkMask(a: SparseMaskArgs, N: number): void {
  if (a.mask !== 'band') return;
  if (!a.bands) throw new InputError("sparseCombine: mask 'band' needs the selectKeys state");
  checkBuffer(a.bands, 'F32', N * 8, 'sparseCombine bands');
}

/**
 * Sparsified, sign-elected task arithmetic over one chunk (shaders/merge/sparse.wgsl): ties,
 * dare_linear, dare_ties, breadcrumbs. out = base + λ·mixed, encoded to outDtype.
 */
export function sparseCombine(rt: GpuRuntime, a: SparseArgs): GPUBuffer {
  const N = a.rows.length;
  const { rows, offset } = a.chunk;
  const n = rows.n;
  if (N === 0 || N !== rows.codes.length) throw new InputError(`sparseCombine: ${N} row parameters for ${rows.codes.length} rows`);
  checkMask(a, N);
  const out = a.dst ?? rt.storage(`mergeSparse.${a.outDtype}`, storageBytes(a.outDtype, offset + n));
  if (n === 0) return out;
  const dst = viewBinding({ buffer: out, dtype: a.outDtype, offset }, n, 'sparseCombine destination');
  const base = baseBinding(a.base, a.chunk, 'sparseCombine base');
  const pbuf = paramsBuffer(rt, { ...a, n, N, offset });
  const rbuf = rowsBuffer(rt, a.rows);
  const wg = rt.workgroupSize(WG);
  const pipeline = rt.pipeline('merge/sparse', {
    WG: wg,
    BASE_DT: dtypeCode(base.dtype),
    OUT_DT: dtypeCode(a.outDtype),
    MASK: MASK_CODE[a.mask],
    CONSENSUS: a.consensus ? 1 : 0,
    ...rowsConstants(rows, false),
  });
  const words = a.outDtype === 'F32' ? n : Math.ceil(n / 2);
  rt.dispatch(pipeline, [base.binding, ...rowsBindings(rows), rbuf, a.bands ?? rbuf, dst, pbuf], rt.grid1d(words, wg));
  rt.release(pbuf, rbuf);
  return out;
}

/**
 * Per row, Σ |Δ_r| and Σ |Δ_r| over the elements the mask keeps, across every chunk of the tensor
 * (the `l1` entry of shaders/merge/sparse.wgsl: f32 partials per workgroup, added here in
 * float64). mergekit's rescale (`rescale: true`) multiplies the kept elements by their ratio.
 */
export async function sparseL1(rt: GpuRuntime, a: SparseMaskArgs & { base: GpuView; rows: TensorRows; keep?: readonly number[] }): Promise<{ total: number; kept: number }[]> {
  const N = a.rows.codes.length;
  checkMask(a, N);
  const wg = rt.workgroupSize(WG);
  if ((wg & (wg - 1)) !== 0) throw new Error(`sparseL1 needs a power-of-two workgroup size, device allows ${wg}`);
  const per = wg * L1_PER;
  const starts: number[] = [];
  let groups = 0;
  for (const c of a.rows.chunks) {
    starts.push(groups);
    groups += Math.ceil(c.rows.n / per);
  }
  const sums = Array.from({ length: N }, () => ({ total: 0, kept: 0 }));
  if (groups === 0) return sums;
  const partial = rt.storage('mergeSparse.l1', N * groups * 2 * 4);
  const rbuf = rowsBuffer(rt, Array.from({ length: N }, (_, r) => ({ coefficient: 1, weight: 1, keep: a.keep?.[r] })));
  const temps: GPUBuffer[] = [rbuf];
  try {
    const encoder = rt.device.createCommandEncoder({ label: 'mergeSparse.l1' });
    a.rows.chunks.forEach((c, k) => {
      if (c.rows.n === 0) return;
      const base = baseBinding(a.base, c, 'sparseL1 base');
      const pbuf = paramsBuffer(rt, { n: c.rows.n, N, lambda: 1, normalize: false, seed: a.seed, tensorIndex: a.tensorIndex, offset: c.offset, group0: starts[k], groups });
      temps.push(pbuf);
      const pipeline = rt.pipeline('merge/sparse', { WG: wg, BASE_DT: dtypeCode(base.dtype), MASK: MASK_CODE[a.mask], ...rowsConstants(c.rows, false) }, 'l1');
      const [gx, gy] = rt.grid1d(Math.ceil(c.rows.n / per) * wg, wg);
      rt.dispatch(pipeline, [base.binding, ...rowsBindings(c.rows), rbuf, a.bands ?? rbuf, partial, pbuf], [gx, gy, N], encoder);
    });
    rt.device.queue.submit([encoder.finish()]);
    const p = await rt.readF32(partial, N * groups * 2);
    for (let r = 0; r < N; r++) {
      for (let g = 0; g < groups; g++) {
        sums[r]!.total += p[2 * (r * groups + g)]!;
        sums[r]!.kept += p[2 * (r * groups + g) + 1]!;
      }
    }
    return sums;
  } finally {
    rt.release(partial, ...temps);
  }
}
