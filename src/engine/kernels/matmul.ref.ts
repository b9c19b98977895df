import type { WeightLayout } from './matmul.ts';

/**
 * Float64 reference for matmul.wgsl: y (M, N) = x (M, K) · Wᵀ + bias, with W (NW, K) for
 * 'linear' or (K, NW) for 'conv1d'; column n uses weight index n0 + n.
 */
export function matmulRef(
  x: Float64Array,
  M: number,
  K: number,
  w: Float64Array,
  layout: WeightLayout,
  N: number,
  bias?: Float64Array,
  n0 = 0,
  NW = n0 + N,
): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n0 + n]! : 0;
      for (let k = 0; k < K; k++) {
        const wv = layout === 'linear' ? w[(n0 + n) * K + k]! : w[k * NW + n0 + n]!;
        s += x[m * K + k]! * wv;
      }
      y[m * N + n] = s;
    }
  }
  return y;
}
