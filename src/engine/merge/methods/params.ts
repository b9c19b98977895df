import { InputError } from '../../errors.ts';
import type { GpuRuntime } from '../../gpu/runtime.ts';
import { F32_MAX } from '../../io/dtypes.ts';
import { packModels, releaseTensorRows, type TensorRows } from '../../kernels/mergeRows.ts';
import { WEIGHT, type MergeContext, type MergeGpuInputs, type MergeMethod, type MergeParams, type ParamSpec, type ResolvedParams } from './types.ts';

/** ω_i: every method that scales models takes it, per model (mergekit's `weight`). */
export const weightParam: ParamSpec = {
  name: WEIGHT,
  label: 'ω',
  type: 'number',
  scope: 'model',
  required: true,
  varies: true,
  description: "The model's coefficient ω (scales its distribution vector, or its tensor for linear).",
};

export const lambdaParam: ParamSpec = { name: 'lambda', label: 'λ', type: 'number', scope: 'global', default: 1, description: 'Scale on the weighted sum of distribution vectors.' };

export const normalizeParam = (def: boolean, description: string): ParamSpec => ({ name: 'normalize', label: 'normalize', type: 'boolean', scope: 'global', default: def, description });

/** A range as messages show it: (0, 1], [0, 1). */
function rangeText(spec: ParamSpec): string {
  const lo = spec.min === undefined ? '(-∞' : `${spec.minExclusive ? '(' : '['}${spec.min}`;
  const hi = spec.max === undefined ? '∞)' : `${spec.max}${spec.maxExclusive ? ')' : ']'}`;
  return `${lo}, ${hi}`;
}

/**
 * The problem with `x` as a number the GPU computes with, or undefined: every coefficient and
 * parameter reaches the kernels as an f32, so it must be finite there too (|x| ≤ F32_MAX).
 */
function numberProblem(x: unknown): string | undefined {
  if (typeof x !== 'number' || !Number.isFinite(x)) return 'expected a finite number';
  if (Math.abs(x) > F32_MAX) return `expected a number within float32 range (|x| ≤ ${F32_MAX.toPrecision(8)})`;
  return undefined;
}

/** The problem with `x` as a value of `spec` (type, float32 range and the spec's range), or undefined. */
export function valueProblem(spec: ParamSpec, x: unknown): string | undefined {
  if (spec.type === 'boolean') return typeof x === 'boolean' ? undefined : 'expected true or false';
  if (spec.type === 'choice') {
    const values = (spec.choices ?? []).map((c) => c.value);
    return typeof x === 'string' && values.includes(x) ? undefined : `expected one of ${values.join(', ')}`;
  }
  const problem = numberProblem(x);
  if (problem || typeof x !== 'number') return problem;
  if (spec.type === 'integer' && !Number.isInteger(x)) return `expected an integer in ${rangeText(spec)}`;
  const below = spec.min !== undefined && (spec.minExclusive ? x <= spec.min : x < spec.min);
  const above = spec.max !== undefined && (spec.maxExclusive ? x >= spec.max : x > spec.max);
  if (below || above) return spec.type === 'integer' ? `expected an integer in ${rangeText(spec)}` : `${spec.name} must be in ${rangeText(spec)}`;
  return undefined;
}

/**
 * Fills defaults, checks types and ranges, expands model-scope values to `models` entries. The
 * per-model coefficient ω is not a parameter here (it arrives as `weights`).
 */
export function resolveParams(method: Pick<MergeMethod, 'name' | 'params'>, params: MergeParams, models: number, ctx?: Pick<MergeContext, 'tensor'>): ResolvedParams {
  const fail = (msg: string): never => {
    throw new InputError(`merge method '${method.name}': ${msg}`, { tensor: ctx?.tensor });
  };
  const specs = method.params.filter((p) => p.name !== WEIGHT);
  const known = new Set(specs.map((p) => p.name));
  for (const name of Object.keys(params)) {
    if (!known.has(name)) fail(`unknown parameter '${name}' (parameters: ${[...known].join(', ') || 'none'})`);
  }
  const out: Record<string, number | boolean | string | readonly number[]> = {};
  for (const spec of specs) {
    const v = params[spec.name] ?? spec.default ?? spec.initial;
    if (v === undefined) fail(`parameter '${spec.name}' is required`);
    if (spec.type === 'boolean') {
      if (typeof v !== 'boolean') fail(`parameter '${spec.name}' must be true or false, got ${JSON.stringify(v)}`);
      out[spec.name] = v!;
      continue;
    }
    if (spec.type === 'choice') {
      const problem = valueProblem(spec, v);
      if (problem) fail(`parameter '${spec.name}': ${problem}, got ${JSON.stringify(v)}`);
      out[spec.name] = v!;
      continue;
    }
    const perModel = spec.scope === 'model';
    const values: readonly number[] = Array.isArray(v) ? (v as readonly number[]) : [v as number];
    if (Array.isArray(v) && !perModel) fail(`parameter '${spec.name}' takes one number, not a list`);
    if (Array.isArray(v) && values.length !== models) fail(`parameter '${spec.name}' has ${values.length} values for ${models} models`);
    for (const x of values) checkRange(spec, x, fail);
    out[spec.name] = perModel ? (Array.isArray(v) ? values : Array.from({ length: models }, () => values[0]!)) : values[0]!;
  }
  return out;
}

function checkRange(spec: ParamSpec, x: unknown, fail: (msg: string) => never): void {
  const problem = numberProblem(x);
  if (problem) fail(`parameter '${spec.name}': ${problem}, got ${typeof x === 'number' ? x : JSON.stringify(x)}`);
  const v = x as number;
  if (spec.type === 'integer' && !Number.isInteger(v)) fail(`parameter '${spec.name}' must be an integer, got ${v}`);
  if (spec.min !== undefined && (spec.minExclusive ? v <= spec.min : v < spec.min)) fail(`parameter '${spec.name}' = ${v} is below its minimum ${spec.minExclusive ? '(exclusive) ' : ''}${spec.min}`);
  if (spec.max !== undefined && (spec.maxExclusive ? v >= spec.max : v > spec.max)) fail(`parameter '${spec.name}' = ${v} is above its maximum ${spec.maxExclusive ? '(exclusive) ' : ''}${spec.max}`);
}

export const num = (p: ResolvedParams, name: string): number => p[name] as number;
export const flag = (p: ResolvedParams, name: string): boolean => p[name] as boolean;
export const choice = (p: ResolvedParams, name: string): string => p[name] as string;
export const list = (p: ResolvedParams, name: string): readonly number[] => p[name] as readonly number[];

/** Checks counts (models, weights, base) for a method call; throws InputError naming the tensor. */
export function checkCall(method: MergeMethod, hasBase: boolean, models: number, weights: number, ctx?: Pick<MergeContext, 'tensor'>): void {
  const fail = (msg: string): never => {
    throw new InputError(`merge method '${method.name}': ${msg}`, { tensor: ctx?.tensor });
  };
  if (method.capabilities.needsBase && !hasBase) fail('needs a base model');
  if (models < method.minModels || models > method.maxModels) {
    fail(`takes ${method.minModels === method.maxModels ? method.minModels : `${method.minModels} to ${method.maxModels}`} models besides the base, got ${models}`);
  }
  if (weights !== models) fail(`${weights} weights for ${models} models`);
}

/** How many models a call merges (rows given, or separate model tensors). */
export function modelCount(inputs: MergeGpuInputs): number {
  return inputs.rows?.codes.length ?? inputs.models?.length ?? 0;
}

/**
 * Runs `body` with the tensor's rows: the ones given (the streaming merge's upload, or the
 * resident set), else the separate model tensors packed into rows and released after.
 */
export async function withRows<T>(rt: GpuRuntime, inputs: MergeGpuInputs, body: (rows: TensorRows) => T | Promise<T>): Promise<T> {
  if (inputs.rows) return body(inputs.rows);
  if (!inputs.models?.length) throw new InputError('a merge call needs the models or their rows');
  const rows = packModels(rt, inputs.models, inputs.n);
  try {
    return await body(rows);
  } finally {
    releaseTensorRows(rt, rows);
  }
}

export const MERGEKIT_DOCS = 'https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md';
