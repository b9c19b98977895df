import { combineTaskArithmetic, taskArithmeticCoefficients } from '../../kernels/merge.ts';
import { taskArithmetic as reference } from '../reference.ts';
import { checkCall, flag, lambdaParam, MERGEKIT_DOCS, modelCount, normalizeParam, num, resolveParams, weightParam, withRows } from './params.ts';
import type { MergeMethod } from './types.ts';

/** DEM (arXiv 2406.15570) = mergekit's task_arithmetic: θ_base + λ Σ ω_i Δ_i. */
export const taskArithmetic: MergeMethod = {
  name: 'task_arithmetic',
  label: 'task_arithmetic (DEM)',
  description: 'Distribution Edited Model: base + λ·Σ ω_i (θ_i − θ_base). Weights need not sum to 1 and may be negative.',
  reference: `${MERGEKIT_DOCS}#task-arithmetic (DEM: https://arxiv.org/abs/2406.15570)`,
  params: [weightParam, lambdaParam, normalizeParam(false, 'Divide the weighted sum by Σ ω_i (skipped when |Σ ω| < 1e-8).')],
  capabilities: { needsBase: true, baseIsInput: false },
  minModels: 1,
  maxModels: Number.POSITIVE_INFINITY,
  mergekitNeutral: { rescale: false },
  cpu(base, models, weights, params, ctx) {
    checkCall(this, base !== undefined, models.length, weights.length, ctx);
    const p = resolveParams(this, params, models.length, ctx);
    return reference(base!, models, weights, num(p, 'lambda'), flag(p, 'normalize'));
  },
  async gpu(rt, inputs, params, ctx) {
    const N = modelCount(inputs);
    checkCall(this, inputs.base !== undefined, N, inputs.weights.length, ctx);
    const p = resolveParams(this, params, N, ctx);
    return withRows(rt, inputs, (rows) => combineTaskArithmetic(rt, { ...inputs, rows, lambda: num(p, 'lambda'), normalize: flag(p, 'normalize') }));
  },
  rowCombine(weights, params, ctx) {
    checkCall(this, true, weights.length, weights.length, ctx);
    const p = resolveParams(this, params, weights.length, ctx);
    return { alpha: 1, coefficients: taskArithmeticCoefficients(weights, num(p, 'lambda'), flag(p, 'normalize')) };
  },
};
