import type { GpuRuntime } from '../../gpu/runtime.ts';
import type { DType } from '../../kernels/decode.ts';
import type { GpuTensor } from '../../kernels/mergeDeltas.ts';

/**
 * A merge method plug-in (STYLE habit 8, after mergekit's merge_methods registry): name,
 * parameters with defaults and ranges, a reference link, a float64 CPU reference and a GPU
 * implementation with the same semantics. Methods operate on one tensor at a time; per-layer
 * coefficient schedules are resolved before (src/engine/merge/coefficients.ts).
 */
export type ParamValue = number | boolean | readonly number[];
export type MergeParams = Readonly<Record<string, ParamValue>>;

export interface ParamSpec {
  name: string;
  type: 'number' | 'boolean';
  default: number | boolean;
  min?: number;
  max?: number;
  /** The range excludes `min` itself (DARE's density > 0). */
  minExclusive?: boolean;
  description: string;
  /** May be one value per model (mergekit's per-model `parameters`), given as an array of N. */
  perModel?: boolean;
}

export interface MergeContext {
  /** Stable index of the tensor in the checkpoint: part of DARE's RNG counter. */
  tensorIndex: number;
  /** u32 seed of DARE's RNG. */
  seed: number;
  /** Tensor name, for error messages. */
  tensor?: string;
}

export interface MergeGpuInputs {
  /** Elements of the tensor (flattened). */
  n: number;
  /** θ_base in its stored dtype (methods with needsBase). */
  base?: GpuTensor;
  /** The N models (fine-tunes) in their stored dtypes. */
  models: readonly GpuTensor[];
  /** One weight per model (ω_i; ignored by slerp). */
  weights: readonly number[];
  outDtype: DType;
  /** Resident packed (N, n) f32 Δ = computeDeltas(base, models), reused instead of recomputed. */
  deltas?: GPUBuffer;
  /** Output buffer to reuse (at least storageBytes(outDtype, n)). */
  dst?: GPUBuffer;
}

/** Parameters after defaults and validation: per-model ones expanded to N values. */
export type ResolvedParams = Readonly<Record<string, number | boolean | readonly number[]>>;

export interface MergeMethod {
  name: string;
  description: string;
  /** Where the semantics come from (mergekit docs / paper). */
  reference: string;
  params: readonly ParamSpec[];
  needsBase: boolean;
  minModels: number;
  maxModels: number;
  /** float64 reference; `base` is undefined for methods without needsBase. */
  cpu(base: Float64Array | undefined, models: readonly Float64Array[], weights: readonly number[], params: MergeParams, ctx: MergeContext): Float64Array;
  /** Same semantics on the GPU: a new buffer (or inputs.dst) of n elements in inputs.outDtype. */
  gpu(rt: GpuRuntime, inputs: MergeGpuInputs, params: MergeParams, ctx: MergeContext): Promise<GPUBuffer>;
  /**
   * Only for methods whose gpu() on resident Δ is one combineRows (task_arithmetic): the factor
   * on the base and the N row coefficients it uses. ResidentMerge then re-merges every tensor in
   * one submit over prepared buffers (PreparedCombine) instead of calling gpu() per tensor.
   */
  rowCombine?(weights: readonly number[], params: MergeParams, ctx: MergeContext): RowCombine;
}

/** alpha·θ_base + Σ_r coefficients[r]·Δ_r (see combineRows). */
export interface RowCombine {
  alpha: number;
  coefficients: number[];
}
