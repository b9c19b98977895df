import { InputError } from '../errors.ts';

/**
 * The scalar a search minimises: the (optionally user-weighted) mean of the per-distribution
 * perplexities. Equal weights give the paper's "average perplexity" criterion.
 */
export function weightedMean(values: readonly number[], weights?: readonly number[]): number {
  if (values.length === 0) throw new InputError('nothing to average: add a validation set');
  if (!weights) return values.reduce((s, v) => s + v, 0) / values.length;
  if (weights.length !== values.length) throw new InputError(`${weights.length} objective weights for ${values.length} validation sets`);
  let sw = 0;
  let s = 0;
  for (const [i, v] of values.entries()) {
    const w = weights[i]!;
    if (!Number.isFinite(w) || w < 0) throw new InputError(`objective weight ${w} must be a finite number ≥ 0`);
    sw += w;
    s += w * v;
  }
  if (sw === 0) throw new InputError('the objective weights sum to 0: give at least one validation set a positive weight');
  return s / sw;
}
