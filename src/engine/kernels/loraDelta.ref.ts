import { loraDelta } from '../io/adapter.ts';

/**
 * Float64 reference of shaders/lora/delta.wgsl: start + scale · B A in the base's element order
 * ((in, out) when transposed); `start` is θ ('set' with a base), the destination ('add'), or zero.
 */
export function loraDeltaRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  f: { rank: number; out: number; in: number; scale: number; transposed: boolean },
  start?: ArrayLike<number>,
): Float64Array {
  const d = loraDelta(a, b, f.rank, f.out, f.in, f.scale, f.transposed);
  if (start) for (let e = 0; e < d.length; e++) d[e]! += start[e]!;
  return d;
}
