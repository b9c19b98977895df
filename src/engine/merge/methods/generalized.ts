import { combineBreadcrumbs, combineDare, combineTies, type SparseMergeArgs } from '../../kernels/merge.ts';
import { generalizedTaskArithmetic, type GeneralizedOptions } from '../reference.ts';
import { checkCall, flag, list, MERGEKIT_DOCS, num, resolveParams, withDeltas } from './params.ts';
import type { MergeContext, MergeMethod, ParamSpec, ResolvedParams } from './types.ts';

/**
 * mergekit's generalized task arithmetic family: sparsify each Δ_i (magnitude trim, random
 * drop, or outlier band), weight, optionally elect a sign per element and average the agreeing
 * entries, scale by λ, add to the base. Float64 reference: reference.generalizedTaskArithmetic.
 */
type Sparsify = 'magnitude' | 'random' | 'outliers';

const lambda: ParamSpec = { name: 'lambda', type: 'number', default: 1, description: 'Scale on the merged delta.' };
const density = (def: number, dare: boolean): ParamSpec => ({
  name: 'density',
  type: 'number',
  default: def,
  min: 0,
  minExclusive: dare,
  max: 1,
  perModel: true,
  description: dare ? 'Probability of keeping each Δ element (kept ones are rescaled by 1/density).' : 'Fraction of Δ elements kept.',
});
const gamma: ParamSpec = { name: 'gamma', type: 'number', default: 0.01, min: 0, max: 1, perModel: true, description: 'Fraction of the largest-magnitude Δ elements dropped.' };
const normalize = (def: boolean): ParamSpec => ({
  name: 'normalize',
  type: 'boolean',
  default: def,
  description: 'Divide by the sum of weights (of the agreeing models, with sign consensus).',
});

/** Options of the float64 reference for a resolved parameter set (also used by tests). */
export function generalizedOptions(sparsify: Sparsify, consensus: boolean, p: ResolvedParams, ctx: MergeContext): GeneralizedOptions {
  return {
    sparsify,
    consensus,
    normalize: flag(p, 'normalize'),
    lambda: num(p, 'lambda'),
    densities: list(p, 'density'),
    gammas: sparsify === 'outliers' ? list(p, 'gamma') : undefined,
    seed: ctx.seed,
    tensorIndex: ctx.tensorIndex,
  };
}

function method(spec: { name: string; description: string; anchor: string; sparsify: Sparsify; consensus: boolean; normalize: boolean; density: number }): MergeMethod & { sparsify: Sparsify; consensus: boolean } {
  const params = [density(spec.density, spec.sparsify === 'random'), ...(spec.sparsify === 'outliers' ? [gamma] : []), lambda, normalize(spec.normalize)];
  return {
    name: spec.name,
    description: spec.description,
    reference: `${MERGEKIT_DOCS}#${spec.anchor}`,
    params,
    needsBase: true,
    minModels: 1,
    maxModels: Number.POSITIVE_INFINITY,
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
        if (spec.sparsify === 'random') return combineDare(rt, { ...args, seed: ctx.seed, tensorIndex: ctx.tensorIndex });
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
  density: 1,
});

export const dareLinear = method({
  name: 'dare_linear',
  description: 'DARE: drop each Δ element with probability 1 − density (seeded), rescale the rest by 1/density, then task arithmetic.',
  anchor: 'dare',
  sparsify: 'random',
  consensus: false,
  normalize: false,
  density: 1,
});

export const dareTies = method({
  name: 'dare_ties',
  description: 'DARE drop-and-rescale followed by TIES sign election.',
  anchor: 'dare',
  sparsify: 'random',
  consensus: true,
  normalize: false,
  density: 1,
});

export const breadcrumbs = method({
  name: 'breadcrumbs',
  description: 'Model Breadcrumbs: drop the largest gamma fraction of each Δ and the smallest so that density remains, then task arithmetic.',
  anchor: 'model-breadcrumbs',
  sparsify: 'outliers',
  consensus: false,
  normalize: false,
  density: 1,
});

export const breadcrumbsTies = method({
  name: 'breadcrumbs_ties',
  description: 'Model Breadcrumbs sparsification followed by TIES sign election.',
  anchor: 'model-breadcrumbs',
  sparsify: 'outliers',
  consensus: true,
  normalize: false,
  density: 1,
});
