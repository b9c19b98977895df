/** Float64 reference for gather_rows.wgsl: rows `idx` of x (rows, C), in that order. */
export function gatherRowsRef(x: Float64Array, C: number, idx: readonly number[]): Float64Array {
  const y = new Float64Array(idx.length * C);
  idx.forEach((r, i) => y.set(x.subarray(r * C, (r + 1) * C), i * C));
  return y;
}
