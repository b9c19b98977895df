import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { cosine, dareKeepThreshold, magnitudeRanks, modelStockRatio, outlierRanks, slerpFactors } from '../merge/reference.ts';
import type { GpuView } from '../gpu/tensor.ts';
import type { FloatDType } from '../io/dtypes.ts';
import { gpuDecodeToF32 } from './decode.ts';
import { combineRows } from './mergeCombine.ts';
import { computeDeltas } from './mergeDeltas.ts';
import { dotNorms } from './mergeDot.ts';
import { selectAbsRanks } from './mergeSelect.ts';
import { sparseCombine, type SparseRow } from './mergeSparse.ts';

/**
 * The merge methods on the GPU, composed from the merge kernels. Two ways in:
 * - resident (interactive DEM): computeDeltas once per tensor, then any combine* with new
 *   weights reads the packed (N, n) f32 deltas, one pass, for any N;
 * - streaming: the same calls right after computeDeltas, releasing the deltas afterwards
 *   (src/engine/merge/methods/* do that).
 * Inputs stay in their stored dtype (decoded in the shaders), arithmetic is f32, the output is
 * encoded to outDtype with round-to-nearest-even. Semantics and the float64 references:
 * src/engine/merge/reference.ts.
 */
export { computeDeltas };

export interface MergeOut {
  n: number;
  outDtype: FloatDType;
  /** Reuse this output buffer (at least storageBytes(outDtype, n)). */
  dst?: GPUBuffer;
  /** First element of dst to write (combineRows-based methods on a chunk of a larger tensor). */
  dstOffset?: number;
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function perRow(values: readonly number[], N: number, what: string): readonly number[] {
  if (values.length !== N) throw new InputError(`${what}: ${values.length} values for ${N} models`);
  return values;
}

/** Row coefficients of task arithmetic: λ ω_i (/ Σ ω_i when normalize and |Σ ω| >= 1e-8). */
export function taskArithmeticCoefficients(weights: readonly number[], lambda: number, normalize: boolean): number[] {
  const s = sum(weights);
  const div = normalize && Math.abs(s) >= 1e-8 ? s : 1;
  return weights.map((w) => (lambda * w) / div);
}

/** DEM / task arithmetic: θ + λ Σ ω_i Δ_i (/ Σ ω_i when normalize and |Σ ω| >= 1e-8). */
export function combineTaskArithmetic(
  rt: GpuRuntime,
  a: MergeOut & { base: GpuView; deltas: GPUBuffer; weights: readonly number[]; lambda: number; normalize: boolean },
): GPUBuffer {
  return combineRows(rt, { ...a, alpha: 1, rows: a.deltas, coefficients: taskArithmeticCoefficients(a.weights, a.lambda, a.normalize) });
}

/**
 * linear: Σ w_i θ_i (/ Σ w_i when normalize). `rows` are the decoded models (computeDeltas without
 * a base), or deltas when `base` is given (the resident buffer): then (Σ c_i)·θ + Σ c_i Δ_i.
 */
export function combineLinear(
  rt: GpuRuntime,
  a: MergeOut & { rows: GPUBuffer; weights: readonly number[]; normalize: boolean; base?: GpuView },
): GPUBuffer {
  const s = sum(a.weights);
  const coefficients = a.weights.map((w) => w / (a.normalize && s !== 0 ? s : 1));
  return combineRows(rt, { ...a, alpha: sum(coefficients), coefficients });
}

export interface SparseMergeArgs extends MergeOut {
  base: GpuView;
  deltas: GPUBuffer;
  weights: readonly number[];
  densities: readonly number[];
  lambda: number;
  normalize: boolean;
  consensus: boolean;
}

function rowsFor(a: SparseMergeArgs, rescale: boolean): SparseRow[] {
  const N = a.weights.length;
  const densities = perRow(a.densities, N, 'density');
  const s = sum(a.weights);
  // Without consensus mergekit normalises by Σ w over all models: fold it into the factors.
  const div = !a.consensus && a.normalize && Math.abs(s) >= 1e-8 ? s : 1;
  return a.weights.map((w, r) => ({
    coefficient: (rescale ? w / densities[r]! : w) / div,
    weight: w,
    keep: rescale ? dareKeepThreshold(densities[r]!) : undefined,
  }));
}

/** Keeps |Δ| within per-row rank bands found on the GPU (select), then sparseCombine. */
function banded(rt: GpuRuntime, a: SparseMergeArgs, ranks: { lo: number; hi: number }[]): GPUBuffer {
  const N = a.weights.length;
  const flat = ranks.flatMap((r) => [r.lo, r.hi]);
  const bands = selectAbsRanks(rt, a.deltas, N, a.n, flat, 2);
  try {
    return sparseCombine(rt, { ...a, rows: rowsFor(a, false), mask: 'band', bands });
  } finally {
    rt.release(bands);
  }
}

/** ties (consensus true, normalize true in mergekit) or magnitude-trimmed task arithmetic. */
export function combineTies(rt: GpuRuntime, a: SparseMergeArgs): GPUBuffer {
  const N = a.weights.length;
  const densities = perRow(a.densities, N, 'density');
  return banded(rt, a, densities.map((d) => magnitudeRanks(a.n, d)));
}

/** dare_linear (consensus false) / dare_ties (consensus true): seeded random drop, rescale 1/density. */
export function combineDare(rt: GpuRuntime, a: SparseMergeArgs & { seed: number; tensorIndex: number }): GPUBuffer {
  for (const d of perRow(a.densities, a.weights.length, 'density')) {
    if (!(d > 0 && d <= 1)) throw new InputError(`DARE density must be in (0, 1], got ${d}`);
  }
  return sparseCombine(rt, { ...a, rows: rowsFor(a, true), mask: 'random' });
}

/** breadcrumbs (consensus false) / breadcrumbs_ties (true): drop the top gamma and the bottom. */
export function combineBreadcrumbs(rt: GpuRuntime, a: SparseMergeArgs & { gammas: readonly number[] }): GPUBuffer {
  const N = a.weights.length;
  const densities = perRow(a.densities, N, 'density');
  const gammas = perRow(a.gammas, N, 'gamma');
  return banded(rt, a, densities.map((d, r) => outlierRanks(a.n, d, gammas[r]!)));
}

/**
 * slerp from a (t = 0) to b (t = 1) on the flattened tensors: the angle from a GPU reduction
 * (dotNorms), the factors in float64 (reference.slerpFactors; lerp when near-parallel), the
 * blend s0·a + s1·b by combineRows.
 */
export async function combineSlerp(rt: GpuRuntime, a: MergeOut & { from: GpuView; to: GpuView; t: number }): Promise<GPUBuffer> {
  const from32 = a.from.dtype === 'F32' ? a.from.buffer : gpuDecodeToF32(rt, a.from.buffer, a.from.dtype, a.n);
  const to32 = a.to.dtype === 'F32' ? a.to.buffer : gpuDecodeToF32(rt, a.to.buffer, a.to.dtype, a.n);
  try {
    const { dot, aa, bb } = await dotNorms(rt, from32, to32, a.n);
    const { s0, s1 } = slerpFactors(a.t, dot, aa, bb);
    return combineRows(rt, { base: a.from, alpha: s0, rows: to32, coefficients: [s1], n: a.n, outDtype: a.outDtype, dst: a.dst });
  } finally {
    if (from32 !== a.from.buffer) rt.release(from32);
    if (to32 !== a.to.buffer) rt.release(to32);
  }
}

/**
 * model_stock: pairwise cosines of the N delta rows by GPU reductions (dotNorms on row offsets),
 * t = N·cos / (1 + (N − 1)·cos) in float64, then θ + (t/N) Σ Δ_i by combineTaskArithmetic.
 */
export async function combineModelStock(rt: GpuRuntime, a: MergeOut & { base: GpuView; deltas: GPUBuffer; models: number }): Promise<GPUBuffer> {
  const N = a.models;
  if (N < 2) throw new InputError(`model_stock needs at least 2 models besides the base, got ${N}`);
  const pairs: Promise<number>[] = [];
  for (let i = 0; i < N; i++) {
    for (let j = i + 1; j < N; j++) {
      pairs.push(dotNorms(rt, a.deltas, a.deltas, a.n, { a: i * a.n, b: j * a.n }).then((d) => cosine(d.dot, d.aa, d.bb)));
    }
  }
  const t = modelStockRatio(N, await Promise.all(pairs));
  return combineTaskArithmetic(rt, { ...a, weights: Array.from({ length: N }, () => t / N), lambda: 1, normalize: false });
}
