/** Reference for merge/combine: alpha·base + Σ_r coef_r·rows[r] in float64. */
export function combineRef(base: Float64Array | undefined, alpha: number, rows: readonly Float64Array[], coef: readonly number[]): Float64Array {
  const n = rows[0]?.length ?? 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let r = 0; r < rows.length; r++) s += coef[r]! * rows[r]![i]!;
    out[i] = (base ? alpha * base[i]! : 0) + s;
  }
  return out;
}
