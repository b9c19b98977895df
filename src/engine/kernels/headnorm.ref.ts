/**
 * Float64 reference for headnorm.wgsl: in place on `buf` (rows, ld), each segment of W columns
 * at `off + g*W` (g < G) of a row becomes x * rsqrt(mean(x²) + eps) * w.
 */
export function headNormRef(buf: Float64Array, rows: number, ld: number, off: number, G: number, W: number, w: Float64Array, eps: number): void {
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < G; g++) {
      const base = r * ld + off + g * W;
      let s = 0;
      for (let c = 0; c < W; c++) s += buf[base + c]! ** 2;
      const k = 1 / Math.sqrt(s / W + eps);
      for (let c = 0; c < W; c++) buf[base + c] = buf[base + c]! * k * w[c]!;
    }
  }
}
