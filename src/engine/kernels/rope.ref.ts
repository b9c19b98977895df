/**
 * Float64 reference for rope.wgsl (Hugging Face rotate-half): in place on `buf` (rows, ld),
 * heads [0, nheads) of width HS from column `off`; row r at position p0 + r % T.
 */
export function ropeRef(buf: Float64Array, rows: number, T: number, p0: number, ld: number, off: number, nheads: number, HS: number, theta: number): void {
  const half = HS / 2;
  for (let r = 0; r < rows; r++) {
    const pos = p0 + (r % T);
    for (let h = 0; h < nheads; h++) {
      for (let j = 0; j < half; j++) {
        const ang = pos / theta ** ((2 * j) / HS);
        const c = Math.cos(ang);
        const s = Math.sin(ang);
        const a = r * ld + off + h * HS + j;
        const x1 = buf[a]!;
        const x2 = buf[a + half]!;
        buf[a] = x1 * c - x2 * s;
        buf[a + half] = x2 * c + x1 * s;
      }
    }
  }
}
