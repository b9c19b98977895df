/** Float64 reference for rmsnorm.wgsl: y = x * rsqrt(mean(x²) + eps) * w per row of (rows, C); plusOne: * (1 + w). */
export function rmsNormRef(x: Float64Array, C: number, w: Float64Array, eps: number, plusOne = false): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / C; r++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[r * C + c]! ** 2;
    const k = 1 / Math.sqrt(s / C + eps);
    for (let c = 0; c < C; c++) y[r * C + c] = x[r * C + c]! * k * (plusOne ? 1 + w[c]! : w[c]!);
  }
  return y;
}
