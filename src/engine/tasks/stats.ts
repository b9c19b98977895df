/**
 * The small statistics task scores need: the first index of the largest value (ties go to the
 * lower index, as lm-eval's argmax), a mean of 0/1 outcomes with its standard error
 * sqrt(p(1 − p)/(n − 1)) (the sample standard deviation over √n), and Spearman's rank
 * correlation (Pearson's r of ranks, ties given their average rank).
 */
export function argmaxFirst(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

export interface MeanScore {
  mean: number;
  /** NaN for fewer than 2 outcomes. */
  stderr: number;
}

export function meanStderr(outcomes: readonly boolean[]): MeanScore {
  const n = outcomes.length;
  const p = n ? outcomes.filter(Boolean).length / n : NaN;
  return { mean: p, stderr: n > 1 ? Math.sqrt((p * (1 - p)) / (n - 1)) : NaN };
}

/** 1-based ranks, ties sharing the average of the ranks they span. */
export function averageRanks(xs: readonly number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(xs.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) ranks[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return ranks;
}

/** Spearman's ρ of paired values; NaN with fewer than 3 pairs or when either side is constant. */
export function rankCorrelation(xs: readonly number[], ys: readonly number[]): number {
  if (xs.length !== ys.length) throw new Error(`rankCorrelation: ${xs.length} values against ${ys.length}`);
  if (xs.length < 3) return NaN;
  const a = averageRanks(xs);
  const b = averageRanks(ys);
  const mean = (v: number[]): number => v.reduce((s, x) => s + x, 0) / v.length;
  const ma = mean(a);
  const mb = mean(b);
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb);
    saa += (a[i]! - ma) ** 2;
    sbb += (b[i]! - mb) ** 2;
  }
  return saa === 0 || sbb === 0 ? NaN : sab / Math.sqrt(saa * sbb);
}
