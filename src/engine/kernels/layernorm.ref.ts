/** Float64 reference for layernorm.wgsl: y = (x - mean) / sqrt(var + eps) * w + b per row of (rows, C). */
export function layerNormRef(x: Float64Array, C: number, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / C; r++) {
    let mean = 0;
    for (let c = 0; c < C; c++) mean += x[r * C + c]!;
    mean /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c]! - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) y[r * C + c] = (x[r * C + c]! - mean) * rstd * w[c]! + b[c]!;
  }
  return y;
}
