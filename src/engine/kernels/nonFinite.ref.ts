import type { NonFinite } from './nonFinite.ts';

/** Reference for merge/nonfinite: the non-finite values among decoded float64 elements. */
export function nonFiniteRef(values: ArrayLike<number>): NonFinite {
  let count = 0;
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i]!)) continue;
    if (first < 0) first = i;
    count++;
  }
  return { count, first };
}
