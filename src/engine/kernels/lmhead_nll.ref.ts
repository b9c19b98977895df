/**
 * Float64 reference for the LM head + log-softmax + NLL: x (rows, C), w (V, C); nll per row
 * (0 where target < 0), and the logits (rows, V) the GPU never materialises. softcap c > 0:
 * each logit z is c·tanh(z / c) (Gemma 2's final_logit_softcapping).
 */
export function lmHeadNllRef(x: Float64Array, C: number, w: Float64Array, V: number, targets: ArrayLike<number>, softcap = 0): { nll: Float64Array; logits: Float64Array } {
  const rows = x.length / C;
  const logits = new Float64Array(rows * V);
  const nll = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += x[r * C + c]! * w[v * C + c]!;
      if (softcap > 0) s = softcap * Math.tanh(s / softcap);
      logits[r * V + v] = s;
      mx = Math.max(mx, s);
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[r * V + v]! - mx);
    const t = targets[r]!;
    nll[r] = t < 0 ? 0 : mx + Math.log(sum) - logits[r * V + t]!;
  }
  return { nll, logits };
}
