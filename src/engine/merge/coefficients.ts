/**
 * Evaluates recipe coefficients for one tensor, as mergekit does (arcee-ai/mergekit
 * `config.py` evaluate_setting / ConfigReader.parameter, `plan.py` MergePlanner):
 *
 * - Depth position t: a tensor of layer `l` in an `L`-layer model sits at t = l / (L - 1);
 *   a one-layer model's layer sits at t = 1 (mergekit's special case).
 * - Tensors outside the layers (embeddings, final norm, lm head) sit at t = 0, both before and
 *   after the layers. This is mergekit since its multi-module planner (v0.1, March 2025, #534);
 *   mergekit up to v0.0.x evaluated the post-layer tensors at t = 1. We follow current mergekit,
 *   so a gradient's first anchor also governs the embeddings and the head.
 * - A gradient [a_0 .. a_{n-1}] is piecewise linear over t: s = t (n - 1), i = ⌊s⌋,
 *   value = (1 - (s - i)) a_i + (s - i) a_{min(i + 1, n - 1)}.
 * - Filter entries: the first whose filter is a substring of the tensor name (case-sensitive)
 *   wins; an entry without filter, or with filter `*`, matches every tensor; an empty tensor name
 *   matches only those. When none matches, the value is undefined here and the parameter falls
 *   back to the next scope (model -> global -> method default), as mergekit's ConfigReader does.
 */
import { InputError } from '../errors.ts';
import { WEIGHT, type ResolvedParams } from './methods/types.ts';
import type { Coefficient, MergeRecipe } from './recipe.ts';
import { getMethod } from './registry.ts';

/** Depth position in [0, 1] used to evaluate gradients; `layer` null = not inside a layer. */
export function layerPosition(layer: number | null, numLayers: number): number {
  if (!Number.isInteger(numLayers) || numLayers < 1) throw new RangeError(`numLayers must be a positive integer, got ${numLayers}`);
  if (layer === null) return 0;
  if (!Number.isInteger(layer) || layer < 0 || layer >= numLayers) {
    throw new RangeError(`layer ${layer} is outside 0..${numLayers - 1}`);
  }
  return numLayers > 1 ? layer / (numLayers - 1) : 1;
}

/** Linear interpolation of gradient anchors at position t ∈ [0, 1]. */
export function gradientAt(anchors: readonly number[], t: number): number {
  if (anchors.length === 0) throw new RangeError('a gradient needs at least one value');
  const s = t * (anchors.length - 1);
  const i0 = Math.floor(s);
  const i1 = Math.min(anchors.length - 1, i0 + 1);
  const frac = s - i0;
  return (1 - frac) * anchors[i0]! + frac * anchors[i1]!;
}

function valueAt(v: number | readonly number[], t: number): number {
  return typeof v === 'number' ? v : gradientAt(v, t);
}

/** Does a filter entry apply to this tensor (mergekit: None, '*' or substring)? */
export function filterMatches(filter: string | undefined, tensorName: string): boolean {
  return filter === undefined || filter === '*' || (tensorName !== '' && tensorName.includes(filter));
}

/**
 * The coefficient's value for a tensor at depth position t, or undefined when it is a filter
 * list and no entry matches (the caller falls back to the next scope).
 */
export function evaluateCoefficient(c: Coefficient, tensorName: string, t: number): number | undefined {
  if (typeof c === 'number') return c;
  if (c.length === 0) return undefined;
  if (c.every((e) => typeof e === 'number')) return gradientAt(c as number[], t);
  for (const e of c) {
    if (typeof e === 'number') continue; // mixed lists are rejected by parseRecipe
    if (filterMatches(e.filter, tensorName)) return valueAt(e.value, t);
  }
  return undefined;
}

/**
 * The coefficient's value for one tensor. `layer` is the tensor's block index, or null for
 * tensors outside the blocks (see the file comment). Throws InputError naming the tensor when a
 * filter list has no entry for it.
 */
export function resolveCoefficient(c: Coefficient, tensorName: string, layer: number | null, numLayers: number): number {
  const v = evaluateCoefficient(c, tensorName, layerPosition(layer, numLayers));
  if (v === undefined) {
    throw new InputError('no filter entry matches this tensor; add a last entry without `filter` as the default', { tensor: tensorName });
  }
  return v;
}

export interface ResolvedTensorParams {
  method: string;
  tensor: string;
  layer: number | null;
  /** Depth position the gradients were evaluated at. */
  position: number;
  /** Model ids, in recipe order (the base only where `linear` lists it). */
  models: string[];
  /** ω per model; 1 for methods without weights (slerp, model_stock). */
  weights: number[];
  /** Every other parameter the method declares, by name: model-scope ones as one value per model. */
  params: ResolvedParams;
}

/**
 * Every number the merge of one tensor needs. Model-scope parameters resolve model -> global ->
 * method default (mergekit's precedence); a required one that resolves nowhere is an InputError
 * naming the tensor. Also runs the method's per-tensor check, for the rules parseRecipe cannot
 * decide without tensor names (linear's non-zero Σ w under normalize).
 */
export function resolveTensorParams(
  recipe: MergeRecipe,
  tensorName: string,
  layer: number | null,
  numLayers: number,
): ResolvedTensorParams {
  const method = getMethod(recipe.method);
  const position = layerPosition(layer, numLayers);
  const g = recipe.parameters;
  const err = (msg: string): InputError => new InputError(msg, { tensor: tensorName });
  const at = (c: Coefficient | boolean | string | undefined): number | boolean | string | undefined =>
    c === undefined || typeof c === 'boolean' || typeof c === 'string' ? c : evaluateCoefficient(c, tensorName, position);

  const models = recipe.models.map((m) => m.model);
  const params: Record<string, number | boolean | string | number[]> = {};
  let weights = models.map(() => 1);
  for (const spec of method.params) {
    if (spec.scope === 'model') {
      const values = recipe.models.map((m) => {
        const v = at(m.parameters[spec.name]) ?? at(g[spec.name]);
        if (v === undefined && spec.required) {
          throw err(`no ${spec.name} for model '${m.model}': neither its own nor the global ${spec.name} has an entry matching this tensor`);
        }
        return (v ?? spec.default) as number;
      });
      if (spec.name === WEIGHT) weights = values;
      else params[spec.name] = values;
      continue;
    }
    const v = at(g[spec.name]) ?? spec.default;
    if (v === undefined) throw err(`${recipe.method} has no ${spec.name} for this tensor; give parameters.${spec.name} a default entry`);
    params[spec.name] = v;
  }
  const problem = method.check?.({ models, weights, params });
  if (problem) throw err(problem);
  return { method: recipe.method, tensor: tensorName, layer, position, models, weights, params };
}
