import { combineModelStock } from '../../kernels/merge.ts';
import { modelStock as reference } from '../reference.ts';
import { checkCall, MERGEKIT_DOCS, modelCount, resolveParams, withRows } from './params.ts';
import type { MergeMethod } from './types.ts';

/** mergekit model_stock (Jang et al., "Model Stock", arXiv 2403.19522), whole-tensor variant. */
export const modelStock: MergeMethod = {
  name: 'model_stock',
  label: 'model_stock',
  description: 'Model Stock: interpolate between the base and the average fine-tune by a ratio from the angle between the deltas. Weights are not used.',
  reference: `${MERGEKIT_DOCS}#model-stock`,
  params: [],
  capabilities: { needsBase: true, baseIsInput: false },
  minModels: 2,
  maxModels: Number.POSITIVE_INFINITY,
  modelsRule: 'model_stock needs at least two fine-tuned models besides the base (mergekit: base plus two or more)',
  cpu(base, models, weights, params, ctx) {
    checkCall(this, base !== undefined, models.length, weights.length, ctx);
    resolveParams(this, params, models.length, ctx);
    return reference(base!, models);
  },
  async gpu(rt, inputs, params, ctx) {
    const N = modelCount(inputs);
    checkCall(this, inputs.base !== undefined, N, inputs.weights.length, ctx);
    resolveParams(this, params, N, ctx);
    return withRows(rt, inputs, (rows) => combineModelStock(rt, { ...inputs, rows, base: inputs.base! }));
  },
};
