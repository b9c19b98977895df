/**
 * Float64 reference for rope.wgsl (Hugging Face rotate-half): in place on `buf` (rows, ld),
 * heads [0, nheads) of width HS from column `off`; row r at position p0 + r % T. `inv` (HS/2)
 * are the inverse frequencies and `scale` multiplies cos and sin (model/rope.ts).
 */
export function ropeRef(buf: Float64Array, rows: number, T: number, p0: number, ld: number, off: number, nheads: number, HS: number, freqs: { inv: ArrayLike<number>; scale: number }): void {
  const half = HS / 2;
  for (let r = 0; r < rows; r++) {
    const pos = p0 + (r % T);
    for (let h = 0; h < nheads; h++) {
      for (let j = 0; j < half; j++) {
        const ang = pos * freqs.inv[j]!;
        const c = Math.cos(ang) * freqs.scale;
        const s = Math.sin(ang) * freqs.scale;
        const a = r * ld + off + h * HS + j;
        const x1 = buf[a]!;
        const x2 = buf[a + half]!;
        buf[a] = x1 * c - x2 * s;
        buf[a + half] = x2 * c + x1 * s;
      }
    }
  }
}
