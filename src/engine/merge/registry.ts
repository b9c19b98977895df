import { InputError } from '../errors.ts';
import { breadcrumbs, breadcrumbsTies, dareLinear, dareTies, ties } from './methods/generalized.ts';
import { linear } from './methods/linear.ts';
import { modelStock } from './methods/modelStock.ts';
import { slerp } from './methods/slerp.ts';
import { taskArithmetic } from './methods/taskArithmetic.ts';
import type { MergeMethod } from './methods/types.ts';

/**
 * The merge methods, by mergekit name (STYLE habit 8). Add a method: write
 * methods/<name>.ts (a MergeMethod with a float64 `cpu` and a `gpu` of the same semantics)
 * and list it here; the UI, the recipe parser and the CLI read everything else from it.
 */
export const METHODS: readonly MergeMethod[] = [taskArithmetic, linear, ties, dareLinear, dareTies, breadcrumbs, breadcrumbsTies, slerp, modelStock];

const byName = new Map(METHODS.map((m) => [m.name, m]));

export function methodNames(): string[] {
  return METHODS.map((m) => m.name);
}

/** The method called `name`; InputError listing the known methods otherwise. */
export function getMethod(name: string): MergeMethod {
  const m = byName.get(name);
  if (!m) throw new InputError(`unknown merge method '${name}' (known: ${methodNames().join(', ')})`);
  return m;
}

export { resolveParams } from './methods/params.ts';
export type { MergeContext, MergeGpuInputs, MergeMethod, MergeParams, ParamSpec, ParamValue, ResolvedParams } from './methods/types.ts';
