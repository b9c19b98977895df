import { InputError } from '../errors.ts';
import { breadcrumbs, breadcrumbsTies, dareLinear, dareTies, ties } from './methods/generalized.ts';
import { linear } from './methods/linear.ts';
import { modelStock } from './methods/modelStock.ts';
import { slerp } from './methods/slerp.ts';
import { taskArithmetic } from './methods/taskArithmetic.ts';
import { WEIGHT, type MergeMethod, type ParamSpec } from './methods/types.ts';

/**
 * The merge methods, by mergekit name. Add a method: write methods/<name>.ts (a
 * MergeMethod declaring its parameters and capabilities, with a float64 `cpu` and a `gpu` of the
 * same semantics) and list it here; the recipe parser, the mergekit YAML reader/writer, the CLI
 * and the studio read everything else from it.
 */
export const METHODS: readonly MergeMethod[] = [taskArithmetic, linear, ties, dareLinear, dareTies, breadcrumbs, breadcrumbsTies, slerp, modelStock];

/** The method new recipes start from: DEM. */
export const DEFAULT_METHOD = taskArithmetic.name;

const byName = new Map(METHODS.map((m) => [m.name, m]));

export function methodNames(): string[] {
  return METHODS.map((m) => m.name);
}

export function isMethodName(name: unknown): name is string {
  return typeof name === 'string' && byName.has(name);
}

/** The method called `name`; InputError listing the known methods otherwise. */
export function getMethod(name: string): MergeMethod {
  const m = byName.get(name);
  if (!m) throw new InputError(`unknown merge method '${name}' (known: ${methodNames().join(', ')})`);
  return m;
}

/** Does the method scale each model by its own coefficient ω (mergekit's per-model `weight`)? */
export function usesWeights(method: MergeMethod): boolean {
  return method.params.some((p) => p.name === WEIGHT);
}

/** The methods that take a parameter of this name, in registry order. */
export function methodsTaking(param: string): string[] {
  return METHODS.filter((m) => m.params.some((p) => p.name === param)).map((m) => m.name);
}

/**
 * Every parameter name any method declares, once, with the first declaration (the CLI's flags
 * and help are made from this list).
 */
export function allParams(): ParamSpec[] {
  const seen = new Map<string, ParamSpec>();
  for (const m of METHODS) for (const p of m.params) if (!seen.has(p.name)) seen.set(p.name, p);
  return [...seen.values()];
}

export { resolveParams } from './methods/params.ts';
export { WEIGHT } from './methods/types.ts';
export type { MergeContext, MergeGpuInputs, MergeMethod, MergeParams, MethodCapabilities, ParamSpec, ParamValue, ResolvedParams } from './methods/types.ts';
