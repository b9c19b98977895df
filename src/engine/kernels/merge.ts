import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { cosine, dareKeepThreshold, l1RescaleFactor, magnitudeRanks, modelStockRatio, outlierRanks, slerpFactors, type RescaleMode } from '../merge/reference.ts';
import type { GpuView } from '../gpu/tensor.ts';
import { storageBytes, type FloatDType } from '../io/dtypes.ts';
import { combineRows } from './mergeCombine.ts';
import { dotNorms } from './mergeDot.ts';
import type { TensorRows } from './mergeRows.ts';
import { selectKeys } from './mergeSelect.ts';
import { sparseCombine, sparseL1, type SparseMaskArgs, type SparseRow } from './mergeSparse.ts';

/**
 * The merge methods on the GPU, composed from the merge kernels over one tensor's rows
 * (mergeRows.ts: the models in their stored dtypes, or compressed Δ, in one or more chunks).
 * The streaming merge uploads a tensor's rows, runs one of these and releases them; the
 * resident merge keeps every tensor's rows and runs these again with new coefficients — the same
 * kernels on the same inputs, so the same bits. Whole-tensor quantities (ranks, norms, angles)
 * are reduced across chunks first, then each chunk is combined into the output at its offset.
 * Arithmetic is f32 (Δ formed in the kernels), the output is encoded to outDtype with
 * round-to-nearest-even. Semantics and the float64 references: src/engine/merge/reference.ts.
 */
export interface MergeInputs {
  /** Elements of the tensor. */
  n: number;
  /** θ_base in its stored dtype (whole tensor). */
  base?: GpuView;
  rows: TensorRows;
  outDtype: FloatDType;
  /** Output to write (at least storageBytes(outDtype, n)); a new buffer otherwise. */
  dst?: GPUBuffer;
}

/**
 * An upper bound of the GPU bytes one tensor's merge allocates besides its inputs and output,
 * whatever the method: merge/select's state, per-workgroup histograms, chunk parameters and its
 * pass table; sparse's L1 partials and row parameters; model_stock's N(N−1)/2 concurrent dot
 * partials (64 and 256-wide workgroups: every device allows those). For memory plans.
 */
export function mergeScratchBytes(N: number, n: number, chunks: number): number {
  const selectSlots = Math.ceil(n / (64 * 64)) + chunks;
  const reduceSlots = Math.ceil(n / 1024) + chunks;
  const select = N * 2 * 16 + N * selectSlots * 2 * 16 * 4 + 32 * chunks + 16 * 256;
  const l1 = N * reduceSlots * 2 * 4 + 48 * chunks + N * 16;
  const sparse = 48 + N * 16;
  const dot = ((N * (N - 1)) / 2 + 1) * (reduceSlots * 3 * 4 + 16 * chunks);
  return select + l1 + sparse + dot;
}

/** GPU bytes of one chunk's prepared combine (PreparedCombine: 16-byte parameters and N coefficients). */
export function preparedCombineBytes(N: number): number {
  return 16 + Math.max(4, N * 4);
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function perRow(values: readonly number[], N: number, what: string): readonly number[] {
  if (values.length !== N) throw new InputError(`${what}: ${values.length} values for ${N} models`);
  return values;
}

function output(rt: GpuRuntime, a: MergeInputs, label: string): GPUBuffer {
  if (a.rows.n !== a.n) throw new InputError(`${label}: rows of ${a.rows.n} elements for a tensor of ${a.n}`);
  return a.dst ?? rt.storage(`${label}.${a.outDtype}`, storageBytes(a.outDtype, a.n));
}

/** Row coefficients of task arithmetic: λ ω_i (/ Σ ω_i when normalize and |Σ ω| >= 1e-8). */
export function taskArithmeticCoefficients(weights: readonly number[], lambda: number, normalize: boolean): number[] {
  const s = sum(weights);
  const div = normalize && Math.abs(s) >= 1e-8 ? s : 1;
  return weights.map((w) => (lambda * w) / div);
}

/** alpha·θ + Σ_r coefficients[r]·Δ_r over every chunk (raw: of θ_r, hasBase false for a plain sum). */
export function combineAll(rt: GpuRuntime, a: MergeInputs & { coefficients: readonly number[]; alpha?: number; raw?: boolean; hasBase?: boolean }): GPUBuffer {
  const out = output(rt, a, 'mergeCombine');
  for (const chunk of a.rows.chunks) combineRows(rt, { ...a, chunk, dst: out });
  return out;
}

/** DEM / task arithmetic: θ + λ Σ ω_i Δ_i (/ Σ ω_i when normalize and |Σ ω| >= 1e-8). */
export function combineTaskArithmetic(rt: GpuRuntime, a: MergeInputs & { weights: readonly number[]; lambda: number; normalize: boolean }): GPUBuffer {
  return combineAll(rt, { ...a, alpha: 1, coefficients: taskArithmeticCoefficients(a.weights, a.lambda, a.normalize) });
}

/** linear: Σ w_i θ_i (/ Σ w_i when normalize), the models read raw (from Δ: θ + Δ_i). */
export function combineLinear(rt: GpuRuntime, a: MergeInputs & { weights: readonly number[]; normalize: boolean }): GPUBuffer {
  const s = sum(a.weights);
  const coefficients = a.weights.map((w) => w / (a.normalize && s !== 0 ? s : 1));
  return combineAll(rt, { ...a, coefficients, raw: true, hasBase: false });
}

export interface SparseMergeArgs extends MergeInputs {
  base: GpuView;
  weights: readonly number[];
  densities: readonly number[];
  lambda: number;
  normalize: boolean;
  consensus: boolean;
  /** What multiplies the kept elements (reference.RescaleMode). */
  rescale: RescaleMode;
}

/** The per-row factors of sparseCombine; `scaled` applies the rescale to a weight. */
function rowsFor(a: SparseMergeArgs, scaled: (w: number, r: number) => number, keep?: readonly number[]): SparseRow[] {
  const s = sum(a.weights);
  // Without consensus mergekit normalises by Σ w over all models: fold it into the factors.
  const div = !a.consensus && a.normalize && Math.abs(s) >= 1e-8 ? s : 1;
  return a.weights.map((w, r) => ({ coefficient: scaled(w, r) / div, weight: w, keep: keep?.[r] }));
}

/** ω_r times the rescale: ω (none), ω / density, or ω · Σ|Δ| / Σ|kept Δ| from a GPU reduction (l1). */
async function rescaled(rt: GpuRuntime, a: SparseMergeArgs, mask: SparseMaskArgs, keep?: readonly number[]): Promise<(w: number, r: number) => number> {
  const densities = perRow(a.densities, a.weights.length, 'density');
  if (a.rescale === 'none') return (w) => w;
  if (a.rescale === 'density') return (w, r) => w / densities[r]!;
  const sums = await sparseL1(rt, { ...mask, base: a.base, rows: a.rows, keep });
  return (w, r) => (densities[r]! >= 1 ? w : w * l1RescaleFactor(sums[r]!.total, sums[r]!.kept));
}

async function sparse(rt: GpuRuntime, a: SparseMergeArgs, mask: SparseMaskArgs, keep?: readonly number[]): Promise<GPUBuffer> {
  const scaled = await rescaled(rt, a, mask, keep);
  const out = output(rt, a, 'mergeSparse');
  for (const chunk of a.rows.chunks) sparseCombine(rt, { ...a, ...mask, chunk, rows: rowsFor(a, scaled, keep), dst: out });
  return out;
}

/** Keeps, per row, the elements whose select keys lie within a rank band (ties, breadcrumbs). */
async function banded(rt: GpuRuntime, a: SparseMergeArgs, ranks: { lo: number; hi: number }[]): Promise<GPUBuffer> {
  const bands = selectKeys(rt, { base: a.base, rows: a.rows, ranks: ranks.flatMap((r) => [r.lo, r.hi]), bounds: ['lower', 'upper'] });
  try {
    return await sparse(rt, a, { mask: 'band', bands });
  } finally {
    rt.release(bands);
  }
}

/** ties (consensus true, normalize true in mergekit) or magnitude-trimmed task arithmetic: exactly the top k = int(density·n). */
export function combineTies(rt: GpuRuntime, a: SparseMergeArgs): Promise<GPUBuffer> {
  const densities = perRow(a.densities, a.weights.length, 'density');
  return banded(rt, a, densities.map((d) => magnitudeRanks(a.n, d)));
}

/** dare_linear (consensus false) / dare_ties (consensus true): seeded random drop, then the rescale. */
export function combineDare(rt: GpuRuntime, a: SparseMergeArgs & { seed: number; tensorIndex: number }): Promise<GPUBuffer> {
  const densities = perRow(a.densities, a.weights.length, 'density');
  for (const d of densities) {
    if (!(d > 0 && d <= 1)) throw new InputError(`DARE density must be in (0, 1], got ${d}`);
  }
  return sparse(rt, a, { mask: 'random', seed: a.seed, tensorIndex: a.tensorIndex }, densities.map(dareKeepThreshold));
}

/** breadcrumbs (consensus false) / breadcrumbs_ties (true): drop the top gamma and the bottom. */
export function combineBreadcrumbs(rt: GpuRuntime, a: SparseMergeArgs & { gammas: readonly number[] }): Promise<GPUBuffer> {
  const N = a.weights.length;
  const densities = perRow(a.densities, N, 'density');
  const gammas = perRow(a.gammas, N, 'gamma');
  return banded(rt, a, densities.map((d, r) => outlierRanks(a.n, d, gammas[r]!)));
}

/**
 * slerp from the base (t = 0) to the one model (t = 1) on the flattened tensor: the angle from a
 * GPU reduction (dotNorms, the model read raw), the factors in float64 (reference.slerpFactors;
 * lerp when near-parallel), the blend s0·θ + s1·θ_1 by combineRows.
 */
export async function combineSlerp(rt: GpuRuntime, a: MergeInputs & { base: GpuView; t: number }): Promise<GPUBuffer> {
  if (a.rows.codes.length !== 1) throw new InputError(`slerp takes one model besides the base, got ${a.rows.codes.length}`);
  const { dot, aa, bb } = await dotNorms(rt, { base: a.base, rows: a.rows, raw: true, a: 'base', b: 0 });
  const { s0, s1 } = slerpFactors(a.t, dot, aa, bb);
  return combineAll(rt, { ...a, alpha: s0, coefficients: [s1], raw: true, hasBase: true });
}

/**
 * model_stock: pairwise cosines of the N Δ rows by GPU reductions (dotNorms), t = N·cos /
 * (1 + (N − 1)·cos) in float64, then θ + (t/N) Σ Δ_i by combineTaskArithmetic.
 */
export async function combineModelStock(rt: GpuRuntime, a: MergeInputs & { base: GpuView }): Promise<GPUBuffer> {
  const N = a.rows.codes.length;
  if (N < 2) throw new InputError(`model_stock needs at least 2 models besides the base, got ${N}`);
  const pairs: Promise<number>[] = [];
  for (let i = 0; i < N; i++) {
    for (let j = i + 1; j < N; j++) pairs.push(dotNorms(rt, { base: a.base, rows: a.rows, a: i, b: j }).then((d) => cosine(d.dot, d.aa, d.bb)));
  }
  const t = modelStockRatio(N, await Promise.all(pairs));
  return combineTaskArithmetic(rt, { ...a, weights: Array.from({ length: N }, () => t / N), lambda: 1, normalize: false });
}
