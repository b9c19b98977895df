import { combineBreadcrumbs, combineDare, combineTies, type SparseMergeArgs } from '../../kernels/merge.ts';
import { generalizedTaskArithmetic, type GeneralizedOptions } from '../reference.ts';
import { checkCall, flag, lambdaParam, list, MERGEKIT_DOCS, normalizeParam, num, resolveParams, weightParam, withDeltas } from './params.ts';
import type { MergeContext, MergeMethod, ParamSpec, RecipeCoefficient, RecipeProblem, ResolvedParams } from './types.ts';

/**
 * mergekit's generalized task arithmetic family: sparsify each Δ_i (magnitude trim, random
 * drop, or outlier band), weight, optionally elect a sign per element and average the agreeing
 * entries, scale by λ, add to the base. Float64 reference: reference.generalizedTaskArithmetic.
 */
type Sparsify = 'magnitude' | 'random' | 'outliers';

const lambda: ParamSpec = { ...lambdaParam, description: 'Scale on the merged delta.' };
const density = (dare: boolean): ParamSpec => ({
  name: 'density',
  label: 'density',
  type: 'number',
  scope: 'model',
  default: 1,
  min: 0,
  minExclusive: true,
  max: 1,
  varies: true,
  description: dare ? 'Probability of keeping each Δ element (kept ones are rescaled by 1/density).' : 'Fraction of Δ elements kept.',
});
const gamma: ParamSpec = {
  name: 'gamma',
  label: 'γ',
  type: 'number',
  scope: 'model',
  default: 0.01,
  min: 0,
  max: 1,
  maxExclusive: true,
  varies: true,
  description: 'Fraction of the largest-magnitude Δ elements dropped.',
};
const normalize = (def: boolean): ParamSpec => normalizeParam(def, 'Divide by the sum of weights (of the agreeing models, with sign consensus).');
/** DARE's drop masks come from a counter-based RNG keyed by this seed (studio extension; mergekit draws its own). */
const seed: ParamSpec = {
  name: 'seed',
  label: 'seed',
  type: 'integer',
  scope: 'global',
  default: 0,
  min: 0,
  max: 0xffffffff,
  description: "DARE's random drop-mask seed (same seed → same merge).",
};

/** Options of the float64 reference for a resolved parameter set (also used by tests). */
export function generalizedOptions(sparsify: Sparsify, consensus: boolean, p: ResolvedParams, ctx: MergeContext): GeneralizedOptions {
  return {
    sparsify,
    consensus,
    normalize: flag(p, 'normalize'),
    lambda: num(p, 'lambda'),
    densities: list(p, 'density'),
    gammas: sparsify === 'outliers' ? list(p, 'gamma') : undefined,
    seed: sparsify === 'random' ? num(p, 'seed') >>> 0 : 0,
    tensorIndex: ctx.tensorIndex,
  };
}

/**
 * Breadcrumbs keeps the band between the top gamma and the bottom (1 − density − gamma): where
 * density < 1, density + gamma must not exceed 1. Both are piecewise linear in depth between the
 * anchors of gradients on a shared grid (a scalar broadcasts), so checking the anchors of every
 * segment on which density is not identically 1 is exact. Filtered coefficients are checked per
 * tensor (check) once names are known.
 */
function breadcrumbsViolation(d: RecipeCoefficient, g: RecipeCoefficient): { density: number; gamma: number } | null {
  const anchors = (c: RecipeCoefficient): number[] | null =>
    typeof c === 'number' ? [c] : c.every((e) => typeof e === 'number') ? (c as number[]) : null;
  const da = anchors(d);
  const ga = anchors(g);
  if (!da || !ga) return null;
  if (da.length !== ga.length && da.length !== 1 && ga.length !== 1) return null;
  const n = Math.max(da.length, ga.length);
  const at = (a: number[], i: number): number => (a.length === 1 ? a[0]! : a[i]!);
  const bad = (i: number): { density: number; gamma: number } | null =>
    at(da, i) + at(ga, i) > 1 + 1e-12 ? { density: at(da, i), gamma: at(ga, i) } : null;
  if (n === 1) return at(da, 0) < 1 ? bad(0) : null;
  for (let i = 0; i + 1 < n; i++) {
    if (at(da, i) >= 1 && at(da, i + 1) >= 1) continue;
    const hit = bad(i) ?? bad(i + 1);
    if (hit) return hit;
  }
  return null;
}

const outliersChecks = {
  check({ models, params }: { models: readonly string[]; params: ResolvedParams }): string | undefined {
    const d = list(params, 'density');
    const g = list(params, 'gamma');
    for (const [i, model] of models.entries()) {
      if (d[i]! < 1 && d[i]! + g[i]! > 1 + 1e-12) return `breadcrumbs needs density + gamma ≤ 1, got density ${d[i]} + gamma ${g[i]} for model '${model}'`;
    }
    return undefined;
  },
  checkRecipe({ models, coefficient }: { models: readonly string[]; coefficient: (model: number, param: string) => RecipeCoefficient | undefined }): RecipeProblem | undefined {
    for (const [i, model] of models.entries()) {
      const bad = breadcrumbsViolation(coefficient(i, 'density') ?? density(false).default as number, coefficient(i, 'gamma') ?? (gamma.default as number));
      if (bad) {
        return {
          model: i,
          message: `breadcrumbs needs density + gamma ≤ 1 wherever density < 1 (gamma removes the largest entries, the rest of the drop the smallest), got density ${bad.density} and gamma ${bad.gamma} for model '${model}'`,
        };
      }
    }
    return undefined;
  },
};

function method(spec: { name: string; description: string; anchor: string; sparsify: Sparsify; consensus: boolean; normalize: boolean }): MergeMethod & { sparsify: Sparsify; consensus: boolean } {
  const dare = spec.sparsify === 'random';
  const params = [weightParam, density(dare), ...(spec.sparsify === 'outliers' ? [gamma] : []), lambda, normalize(spec.normalize), ...(dare ? [seed] : [])];
  return {
    name: spec.name,
    label: spec.name,
    description: spec.description,
    reference: `${MERGEKIT_DOCS}#${spec.anchor}`,
    params,
    capabilities: { needsBase: true, baseIsInput: false, readsDeltas: true, chunkable: false },
    minModels: 1,
    maxModels: Number.POSITIVE_INFINITY,
    // mergekit's DARE rescales kept elements by default; the others do not.
    mergekitNeutral: { rescale: dare },
    ...(spec.sparsify === 'outliers' ? outliersChecks : {}),
    sparsify: spec.sparsify,
    consensus: spec.consensus,
    cpu(base, models, weights, raw, ctx) {
      checkCall(this, base !== undefined, models.length, weights.length, ctx);
      const p = resolveParams(this, raw, models.length, ctx);
      return generalizedTaskArithmetic(base!, models, weights, generalizedOptions(spec.sparsify, spec.consensus, p, ctx));
    },
    async gpu(rt, inputs, raw, ctx) {
      checkCall(this, inputs.base !== undefined, inputs.models.length, inputs.weights.length, ctx);
      const p = resolveParams(this, raw, inputs.models.length, ctx);
      return withDeltas(rt, inputs, (deltas) => {
        const args: SparseMergeArgs = {
          ...inputs,
          base: inputs.base!,
          deltas,
          densities: list(p, 'density'),
          lambda: num(p, 'lambda'),
          normalize: flag(p, 'normalize'),
          consensus: spec.consensus,
        };
        if (spec.sparsify === 'magnitude') return combineTies(rt, args);
        if (spec.sparsify === 'random') return combineDare(rt, { ...args, seed: num(p, 'seed') >>> 0, tensorIndex: ctx.tensorIndex });
        return combineBreadcrumbs(rt, { ...args, gammas: list(p, 'gamma') });
      }, { method: this.name, tensor: ctx.tensor });
    },
  };
}

export const ties = method({
  name: 'ties',
  description: 'TIES: trim each Δ to its top-density fraction by magnitude, elect a sign per element, average the agreeing entries.',
  anchor: 'ties',
  sparsify: 'magnitude',
  consensus: true,
  normalize: true,
});

export const dareLinear = method({
  name: 'dare_linear',
  description: 'DARE: drop each Δ element with probability 1 − density (seeded), rescale the rest by 1/density, then task arithmetic.',
  anchor: 'dare',
  sparsify: 'random',
  consensus: false,
  normalize: false,
});

export const dareTies = method({
  name: 'dare_ties',
  description: 'DARE drop-and-rescale followed by TIES sign election.',
  anchor: 'dare',
  sparsify: 'random',
  consensus: true,
  normalize: false,
});

export const breadcrumbs = method({
  name: 'breadcrumbs',
  description: 'Model Breadcrumbs: drop the largest gamma fraction of each Δ and the smallest so that density remains, then task arithmetic.',
  anchor: 'model-breadcrumbs',
  sparsify: 'outliers',
  consensus: false,
  normalize: false,
});

export const breadcrumbsTies = method({
  name: 'breadcrumbs_ties',
  description: 'Model Breadcrumbs sparsification followed by TIES sign election.',
  anchor: 'model-breadcrumbs',
  sparsify: 'outliers',
  consensus: true,
  normalize: false,
});
