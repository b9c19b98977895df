/** Float64 reference for embedding.wgsl: out (B*T, C) = scale · wte[ids] (+ wpe[p0 + r % T]). */
export function embeddingRef(ids: ArrayLike<number>, T: number, C: number, p0: number, wte: Float64Array, wpe?: Float64Array, scale = 1): Float64Array {
  const out = new Float64Array(ids.length * C);
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r]!;
    const pos = p0 + (r % T);
    for (let c = 0; c < C; c++) out[r * C + c] = scale * wte[id * C + c]! + (wpe ? wpe[pos * C + c]! : 0);
  }
  return out;
}
