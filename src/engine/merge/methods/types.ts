import type { GpuRuntime } from '../../gpu/runtime.ts';
import type { GpuView } from '../../gpu/tensor.ts';
import type { FloatDType } from '../../io/dtypes.ts';
import type { TensorRows } from '../../kernels/mergeRows.ts';

/**
 * A merge method plug-in (after mergekit's merge_methods registry): its name, its
 * parameters declared once (scope, default, range), what it can do (capabilities), an optional
 * cross-field check, a float64 CPU reference and a GPU implementation with the same semantics.
 * The recipe parser, the mergekit YAML reader/writer, the CLI's flags and help and the studio's
 * method picker are all derived from these declarations (merge/registry.ts lists the plug-ins).
 * Methods operate on one tensor at a time; per-layer schedules and name filters are resolved
 * before (merge/coefficients.ts).
 */
export type ParamValue = number | boolean | string | readonly number[];
export type MergeParams = Readonly<Record<string, ParamValue>>;

/** The per-model coefficient ω_i (mergekit's `weight`); methods that scale models declare it. */
export const WEIGHT = 'weight';

export interface ParamSpec {
  name: string;
  /** Short label for controls (λ, γ …). */
  label: string;
  type: 'number' | 'integer' | 'boolean' | 'choice';
  /** 'choice': the values it takes (strings), each with what the picker shows. */
  choices?: readonly { value: string; label: string }[];
  /**
   * How mergekit's YAML spells this parameter when it differs from the recipe (a choice that
   * mergekit states as a boolean): its value for each of ours (undefined: mergekit has none, the
   * nearest is written with a note), ours for each of its, and the one mergekit assumes when the
   * key is absent.
   */
  mergekit?: {
    write(value: string): { value: boolean; note?: string };
    read(value: unknown): string | undefined;
    absent: string;
  };
  /**
   * 'model': one value per model (`models[i].parameters`), with the same-named global parameter
   * as the fallback (mergekit's precedence); 'global': only under the top-level `parameters`.
   */
  scope: 'model' | 'global';
  /** A recipe must give it (per model for 'model' scope, unless a global fallback is given). */
  required?: boolean;
  /** Used when a recipe leaves it out (recipes have the global ones written in). */
  default?: number | boolean | string;
  /** Where a control starts for a required parameter without a default (slerp's t). */
  initial?: number;
  min?: number;
  max?: number;
  /** The range excludes `min` / `max` themselves. */
  minExclusive?: boolean;
  maxExclusive?: boolean;
  /** May differ per tensor: a gradient across layer depth or a list of name filters (mergekit). */
  varies?: boolean;
  description: string;
}

export interface MergeContext {
  /** Stable index of the tensor in the checkpoint: part of DARE's RNG counter. */
  tensorIndex: number;
  /** Tensor name, for error messages. */
  tensor?: string;
}

export interface MergeGpuInputs {
  /** Elements of the tensor (flattened). */
  n: number;
  /** θ_base in its stored dtype (methods with needsBase, and rows holding Δ). */
  base?: GpuView;
  /**
   * The tensor's rows (kernels/mergeRows.ts): the models in their stored dtypes or compressed Δ,
   * in chunks when larger than a binding — what the streaming merge uploads and the resident
   * merge keeps. Without them, `models` are packed into rows for the call.
   */
  rows?: TensorRows;
  /** The N models (fine-tunes) as separate tensors in their stored dtypes (when no rows). */
  models?: readonly GpuView[];
  /** One weight per model (ω_i; 1 for methods without weights). */
  weights: readonly number[];
  outDtype: FloatDType;
  /** Output buffer to reuse (at least storageBytes(outDtype, n)). */
  dst?: GPUBuffer;
}

/** Parameters after defaults and validation: model-scope ones expanded to N values. */
export type ResolvedParams = Readonly<Record<string, number | boolean | string | readonly number[]>>;

export interface MethodCapabilities {
  /** θ_base is an input of the formula (slerp's t = 0 end, the task-vector methods' origin). */
  needsBase: boolean;
  /**
   * A listed base is an ordinary weighted input (linear): kept among the models, and mergekit's
   * linear needs no base_model. Otherwise a listed base is dropped (it contributes nothing).
   */
  baseIsInput: boolean;
}

/** What a cross-field check sees: one tensor's resolved values. */
export interface CheckInput {
  /** Model ids in recipe order. */
  models: readonly string[];
  weights: readonly number[];
  params: ResolvedParams;
}

/** A coefficient as a recipe states it: a scalar, a gradient, or name-filter entries. */
export type RecipeCoefficient = number | readonly number[] | readonly { filter?: string; value: number | readonly number[] }[];

/** What a recipe-level check sees, before any tensor is known. */
export interface RecipeCheckInput {
  /** Model ids in recipe order. */
  models: readonly string[];
  /** A model-scope parameter of model i as stated (its own, else the global fallback), or undefined. */
  coefficient(model: number, param: string): RecipeCoefficient | undefined;
  /** A global parameter's value (defaults written in). */
  value(param: string): RecipeCoefficient | boolean | string | undefined;
}

/** A recipe-level problem: about one model (its `parameters`) or one global parameter. */
export interface RecipeProblem {
  model?: number;
  param?: string;
  message: string;
}

export interface MergeMethod {
  name: string;
  /** How the picker shows it ('task_arithmetic (DEM)'). */
  label: string;
  description: string;
  /** Where the semantics come from (mergekit docs / paper). */
  reference: string;
  /** In the order recipes print them: model-scope first, then global. */
  params: readonly ParamSpec[];
  capabilities: MethodCapabilities;
  minModels: number;
  maxModels: number;
  /** Says what the model count must be when it is wrong (default: "needs at least …"). */
  modelsRule?: string;
  /** Says why the base is needed when a recipe lacks it (default: the fine-tunes' origin). */
  baseRule?: string;
  /**
   * mergekit `parameters` flags that do not change this method's result here (task_arithmetic's
   * `rescale`: nothing is dropped, so nothing is rescaled): accepted on import and dropped.
   */
  mergekitNeutral?: Readonly<Record<string, boolean>>;
  /** Where this method's result differs from mergekit's by design: a comment in the exported YAML. */
  mergekitNote?: string;
  /** mergekit lists the base among `models:` too (slerp interpolates base_model and the other). */
  mergekitListsBase?: boolean;
  /** Per-tensor cross-field rule on resolved values: the problem, or undefined. */
  check?(input: CheckInput): string | undefined;
  /**
   * The same rule where it can be decided from the recipe alone (scalars and gradients): the
   * problem and which model it concerns, or undefined. Filtered coefficients wait for check().
   */
  checkRecipe?(input: RecipeCheckInput): RecipeProblem | undefined;
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
