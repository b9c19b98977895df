import { InputError } from '../../errors.ts';
import type { GpuRuntime } from '../../gpu/runtime.ts';
import { computeDeltas } from '../../kernels/mergeDeltas.ts';
import type { MergeContext, MergeGpuInputs, MergeMethod, MergeParams, ParamSpec, ResolvedParams } from './types.ts';

/** Fills defaults, checks types and ranges, expands per-model values to `models` entries. */
export function resolveParams(method: Pick<MergeMethod, 'name' | 'params'>, params: MergeParams, models: number, ctx?: Pick<MergeContext, 'tensor'>): ResolvedParams {
  const fail = (msg: string): never => {
    throw new InputError(`merge method '${method.name}': ${msg}`, { tensor: ctx?.tensor });
  };
  const known = new Set(method.params.map((p) => p.name));
  for (const name of Object.keys(params)) {
    if (!known.has(name)) fail(`unknown parameter '${name}' (parameters: ${[...known].join(', ') || 'none'})`);
  }
  const out: Record<string, number | boolean | readonly number[]> = {};
  for (const spec of method.params) {
    const v = params[spec.name] ?? spec.default;
    if (spec.type === 'boolean') {
      if (typeof v !== 'boolean') fail(`parameter '${spec.name}' must be true or false, got ${JSON.stringify(v)}`);
      out[spec.name] = v;
      continue;
    }
    const values: readonly number[] = Array.isArray(v) ? (v as readonly number[]) : [v as number];
    if (Array.isArray(v) && !spec.perModel) fail(`parameter '${spec.name}' takes one number, not a list`);
    if (Array.isArray(v) && values.length !== models) fail(`parameter '${spec.name}' has ${values.length} values for ${models} models`);
    for (const x of values) checkRange(spec, x, fail);
    out[spec.name] = spec.perModel ? (Array.isArray(v) ? values : Array.from({ length: models }, () => values[0]!)) : values[0]!;
  }
  return out;
}

function checkRange(spec: ParamSpec, x: unknown, fail: (msg: string) => never): void {
  if (typeof x !== 'number' || !Number.isFinite(x)) fail(`parameter '${spec.name}' must be a finite number, got ${JSON.stringify(x)}`);
  const v = x as number;
  if (spec.min !== undefined && (spec.minExclusive ? v <= spec.min : v < spec.min)) fail(`parameter '${spec.name}' = ${v} is below its minimum ${spec.minExclusive ? '(exclusive) ' : ''}${spec.min}`);
  if (spec.max !== undefined && v > spec.max) fail(`parameter '${spec.name}' = ${v} is above its maximum ${spec.max}`);
}

export const num = (p: ResolvedParams, name: string): number => p[name] as number;
export const flag = (p: ResolvedParams, name: string): boolean => p[name] as boolean;
export const list = (p: ResolvedParams, name: string): readonly number[] => p[name] as readonly number[];

/** Checks counts (models, weights, base) for a method call; throws InputError naming the tensor. */
export function checkCall(method: MergeMethod, hasBase: boolean, models: number, weights: number, ctx?: Pick<MergeContext, 'tensor'>): void {
  const fail = (msg: string): never => {
    throw new InputError(`merge method '${method.name}': ${msg}`, { tensor: ctx?.tensor });
  };
  if (method.needsBase && !hasBase) fail('needs a base model');
  if (models < method.minModels || models > method.maxModels) {
    fail(`takes ${method.minModels === method.maxModels ? method.minModels : `${method.minModels} to ${method.maxModels}`} models besides the base, got ${models}`);
  }
  if (weights !== models) fail(`${weights} weights for ${models} models`);
}

/** Runs `body` with the packed Δ (N, n): the resident one if given, else computed and released after. */
export async function withDeltas<T>(rt: GpuRuntime, inputs: MergeGpuInputs, body: (deltas: GPUBuffer) => T | Promise<T>): Promise<T> {
  if (inputs.deltas) return body(inputs.deltas);
  const deltas = computeDeltas(rt, inputs.base, inputs.models, inputs.n);
  try {
    return await body(deltas);
  } finally {
    rt.release(deltas);
  }
}

export const MERGEKIT_DOCS = 'https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md';
