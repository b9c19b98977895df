import type { DotNorms } from './mergeDot.ts';

/** Reference for merge/dot: a·b, |a|², |b|² in float64. */
export function dotNormsRef(a: ArrayLike<number>, b: ArrayLike<number>): DotNorms {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return { dot, aa, bb };
}
