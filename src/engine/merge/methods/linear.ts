import { combineLinear } from '../../kernels/merge.ts';
import { linear as reference } from '../reference.ts';
import { checkCall, flag, MERGEKIT_DOCS, modelCount, normalizeParam, resolveParams, weightParam, withRows } from './params.ts';
import { WEIGHT, type MergeMethod } from './types.ts';

/** mergekit linear: Σ w_i θ_i / Σ w_i. The base, if any, is not used (list it as a model to include it). */
export const linear: MergeMethod = {
  name: 'linear',
  label: 'linear',
  description: 'Weighted average of the models: Σ w_i θ_i / Σ w_i (model soup).',
  reference: `${MERGEKIT_DOCS}#linear`,
  params: [weightParam, normalizeParam(true, 'Divide by Σ w_i (skipped when it is 0).')],
  capabilities: { needsBase: false, baseIsInput: true },
  minModels: 1,
  maxModels: Number.POSITIVE_INFINITY,
  // Linear divides by Σ w (mergekit does not guard a zero sum); caught where it is knowable.
  check({ weights, params }) {
    if (!params.normalize) return undefined;
    const sum = weights.reduce((a, b) => a + b, 0);
    return Math.abs(sum) < 1e-8 ? `linear with normalize divides by the sum of weights, which is ${sum} here` : undefined;
  },
  checkRecipe({ models, coefficient, value }) {
    if (value('normalize') !== true) return undefined;
    const ws = models.map((_, i) => coefficient(i, WEIGHT));
    if (!ws.every((w) => typeof w === 'number')) return undefined;
    const sum = (ws as number[]).reduce((a, b) => a + b, 0);
    if (Math.abs(sum) >= 1e-8) return undefined;
    return { param: 'normalize', message: `linear with normalize: true divides by the sum of weights, which is ${sum}; change the weights or set normalize: false` };
  },
  cpu(_base, models, weights, params, ctx) {
    checkCall(this, true, models.length, weights.length, ctx);
    const p = resolveParams(this, params, models.length, ctx);
    return reference(models, weights, flag(p, 'normalize'));
  },
  async gpu(rt, inputs, params, ctx) {
    const N = modelCount(inputs);
    checkCall(this, true, N, inputs.weights.length, ctx);
    const p = resolveParams(this, params, N, ctx);
    // The models are read raw (from compressed Δ rows: θ + Δ_i, which needs the base).
    return withRows(rt, inputs, (rows) => combineLinear(rt, { ...inputs, rows, normalize: flag(p, 'normalize') }));
  },
};
