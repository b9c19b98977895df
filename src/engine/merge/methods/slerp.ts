import { combineSlerp } from '../../kernels/merge.ts';
import { slerp as reference } from '../reference.ts';
import { checkCall, MERGEKIT_DOCS, modelCount, num, resolveParams, withRows } from './params.ts';
import type { MergeMethod } from './types.ts';

/**
 * mergekit slerp between exactly two models: the base (t = 0) and one other (t = 1), on the
 * flattened tensor. Weights are not used (pass [1]).
 */
export const slerp: MergeMethod = {
  name: 'slerp',
  label: 'slerp',
  description: 'Spherical interpolation between the base (t = 0) and one other model (t = 1); linear when nearly parallel.',
  reference: `${MERGEKIT_DOCS}#slerp`,
  params: [
    {
      name: 't',
      label: 't',
      type: 'number',
      scope: 'global',
      required: true,
      initial: 0.5,
      min: 0,
      max: 1,
      varies: true,
      description: '0 gives the base, 1 the other model; a list is a gradient across layers',
    },
  ],
  capabilities: { needsBase: true, baseIsInput: false },
  minModels: 1,
  maxModels: 1,
  modelsRule: 'slerp interpolates between exactly two models, the base (t = 0) and one other (t = 1)',
  baseRule: 'slerp needs a base (t = 0 gives the base)',
  mergekitListsBase: true,
  cpu(base, models, weights, params, ctx) {
    checkCall(this, base !== undefined, models.length, weights.length, ctx);
    const p = resolveParams(this, params, models.length, ctx);
    return reference(num(p, 't'), base!, models[0]!);
  },
  async gpu(rt, inputs, params, ctx) {
    const N = modelCount(inputs);
    checkCall(this, inputs.base !== undefined, N, inputs.weights.length, ctx);
    const p = resolveParams(this, params, N, ctx);
    return withRows(rt, inputs, (rows) => combineSlerp(rt, { ...inputs, rows, base: inputs.base!, t: num(p, 't') }));
  },
};
