/** Reference for merge/deltas: row i = θ_i − θ_base (float64), or θ_i without a base. (N, n) */
export function deltasRef(base: Float64Array | undefined, models: readonly Float64Array[]): Float64Array[] {
  return models.map((m) => (base ? m.map((x, i) => x - base[i]!) : Float64Array.from(m)));
}
