import { combineBreadcrumbs, combineDare, combineTies, type SparseMergeArgs } from '../../kernels/merge.ts';
import { generalizedTaskArithmetic, type GeneralizedOptions, type RescaleMode } from '../reference.ts';
import { checkCall, choice, flag, lambdaParam, list, MERGEKIT_DOCS, modelCount, normalizeParam, num, resolveParams, weightParam, withRows } from './params.ts';
import type { MergeContext, MergeMethod, ParamSpec, ResolvedParams } from './types.ts';

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
  description: dare ? 'Probability of keeping each Δ element.' : 'Fraction of Δ elements kept: exactly int(density·n), the largest |Δ| (equal ones: lower index first).',
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
  description:
    'Fraction of the largest-magnitude Δ elements dropped (where density + gamma > 1, fewer, so that density remains, as mergekit; ' +
    'where int(gamma·n) = 0, none — mergekit then drops the whole Δ).',
};

/**
 * mergekit keeps the band indices[n_bot : −n_top] of the sorted |Δ|, which is empty when
 * n_top = int(γ·n) = 0 (γ = 0, or the default 0.01 on tensors under 100 elements): the whole Δ
 * is dropped. The studio keeps the intended band there (drops no top elements).
 */
const BREADCRUMBS_NOTE =
  'breadcrumbs: where int(gamma·n) = 0 (gamma 0, or 0.01 on tensors under 100 elements) DEM Studio drops no top elements; mergekit drops that whole Δ';

const RESCALE_CHOICES = {
  l1: { value: 'l1', label: "restore each Δ's L1 norm (mergekit rescale: true)" },
  density: { value: 'density', label: '× 1/density (DARE paper)' },
  none: { value: 'none', label: 'none (mergekit rescale: false)' },
} as const;

/**
 * What multiplies the kept elements of a sparsified Δ. mergekit's YAML key `rescale` is a
 * boolean: true restores the Δ's L1 norm (its default for DARE since early 2025), false keeps
 * the kept elements as they are; the studio adds the DARE paper's 1/density (its default for
 * DARE, as before the key existed here). mergekit has no 1/density: such a recipe exports as
 * `rescale: true` (the same in expectation: a random drop keeps density·Σ|Δ| on average).
 */
const rescale = (dare: boolean): ParamSpec => ({
  name: 'rescale',
  label: 'rescale',
  type: 'choice',
  scope: 'global',
  choices: dare ? [RESCALE_CHOICES.l1, RESCALE_CHOICES.density, RESCALE_CHOICES.none] : [RESCALE_CHOICES.none, RESCALE_CHOICES.l1],
  default: dare ? 'density' : 'none',
  description: dare
    ? "What multiplies the kept Δ elements: l1 (restore each Δ's L1 norm, mergekit's rescale: true), density (1/density, the DARE paper), none."
    : "What multiplies the kept Δ elements: none, or l1 (restore each Δ's L1 norm, mergekit's rescale: true).",
  mergekit: {
    write: (v) =>
      v === 'density'
        ? { value: true, note: " studio: kept Δ × 1/density; mergekit's rescale: true restores each Δ's L1 norm instead (equal in expectation)" }
        : { value: v === 'l1' },
    read: (v) => (v === true ? 'l1' : v === false ? 'none' : undefined),
    absent: dare ? 'l1' : 'none',
  },
});
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
    rescale: choice(p, 'rescale') as RescaleMode,
  };
}

function method(spec: { name: string; description: string; anchor: string; sparsify: Sparsify; consensus: boolean; normalize: boolean }): MergeMethod & { sparsify: Sparsify; consensus: boolean } {
  const dare = spec.sparsify === 'random';
  const params = [weightParam, density(dare), ...(spec.sparsify === 'outliers' ? [gamma] : []), lambda, normalize(spec.normalize), rescale(dare), ...(dare ? [seed] : [])];
  return {
    name: spec.name,
    label: spec.name,
    description: spec.description,
    reference: `${MERGEKIT_DOCS}#${spec.anchor}`,
    params,
    capabilities: { needsBase: true, baseIsInput: false },
    minModels: 1,
    maxModels: Number.POSITIVE_INFINITY,
    ...(spec.sparsify === 'outliers' ? { mergekitNote: BREADCRUMBS_NOTE } : {}),
    sparsify: spec.sparsify,
    consensus: spec.consensus,
    cpu(base, models, weights, raw, ctx) {
      checkCall(this, base !== undefined, models.length, weights.length, ctx);
      const p = resolveParams(this, raw, models.length, ctx);
      return generalizedTaskArithmetic(base!, models, weights, generalizedOptions(spec.sparsify, spec.consensus, p, ctx));
    },
    async gpu(rt, inputs, raw, ctx) {
      const N = modelCount(inputs);
      checkCall(this, inputs.base !== undefined, N, inputs.weights.length, ctx);
      const p = resolveParams(this, raw, N, ctx);
      return withRows(rt, inputs, (rows) => {
        const args: SparseMergeArgs = {
          ...inputs,
          rows,
          base: inputs.base!,
          densities: list(p, 'density'),
          lambda: num(p, 'lambda'),
          normalize: flag(p, 'normalize'),
          consensus: spec.consensus,
          rescale: choice(p, 'rescale') as RescaleMode,
        };
        if (spec.sparsify === 'magnitude') return combineTies(rt, args);
        if (spec.sparsify === 'random') return combineDare(rt, { ...args, seed: num(p, 'seed') >>> 0, tensorIndex: ctx.tensorIndex });
        return combineBreadcrumbs(rt, { ...args, gammas: list(p, 'gamma') });
      });
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
  description: 'DARE: drop each Δ element with probability 1 − density (seeded), rescale the rest (1/density, or to the L1 norm as mergekit), then task arithmetic.',
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
