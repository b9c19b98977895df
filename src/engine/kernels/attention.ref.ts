/**
 * Float64 reference for attention.wgsl with a plain (two-pass) softmax.
 * q (B, T, NH*HS); k, v (B, p0 + T, NKV*HS) holding all keys; out (B, T, NH*HS).
 * window W > 0: the query at position i sees keys i - W < j <= i (transformers' sliding window).
 * Scores q·k · scale (default 1/√HS); softcap c > 0: c·tanh(score / c) (Gemma 2's order: scale,
 * cap, then mask and softmax).
 */
export function attentionRef(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  B: number,
  T: number,
  p0: number,
  NH: number,
  NKV: number,
  HS: number,
  window = 0,
  scale = 1 / Math.sqrt(HS),
  softcap = 0,
): Float64Array {
  const S = p0 + T;
  const KVD = NKV * HS;
  const out = new Float64Array(B * T * NH * HS);
  const att = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const kvh = Math.floor(h / (NH / NKV));
      for (let t = 0; t < T; t++) {
        const qa = (b * T + t) * NH * HS + h * HS;
        const n = p0 + t + 1;
        const j0 = window > 0 ? Math.max(0, n - window) : 0;
        let mx = -Infinity;
        for (let j = j0; j < n; j++) {
          let s = 0;
          for (let d = 0; d < HS; d++) s += q[qa + d]! * k[(b * S + j) * KVD + kvh * HS + d]!;
          att[j] = softcap > 0 ? softcap * Math.tanh((s * scale) / softcap) : s * scale;
          mx = Math.max(mx, att[j]!);
        }
        let sum = 0;
        for (let j = j0; j < n; j++) {
          att[j] = Math.exp(att[j]! - mx);
          sum += att[j]!;
        }
        for (let d = 0; d < HS; d++) {
          let o = 0;
          for (let j = j0; j < n; j++) o += att[j]! * v[(b * S + j) * KVD + kvh * HS + d]!;
          out[qa + d] = o / sum;
        }
      }
    }
  }
  return out;
}
