import { throwIfAborted } from '../errors.ts';

/**
 * A budgeted optimiser for the coefficients: Nelder–Mead (Nelder & Mead 1965, with the standard
 * coefficients reflection 1, expansion 2, contraction ½, shrink ½), box-constrained by clamping.
 * Each evaluation is one merge plus one forward pass per validation set, so the budget counts
 * evaluations, and points already scored are not scored again (the cache key is the rounded point).
 */
export interface NelderMeadOptions {
  /** Initial simplex edge along each axis; default 0.25. */
  step?: number;
  /** Hard cap on objective evaluations. */
  maxEvals: number;
  /** Stop when the simplex's best/worst values differ by less than this; default 1e-6. */
  fTolerance?: number;
  /** Stop when every vertex is within this of the best (max-norm); default 1e-4. */
  xTolerance?: number;
  lower?: readonly number[] | number;
  upper?: readonly number[] | number;
  /** Points are rounded to this many decimals before evaluation (slider resolution); default 4. */
  decimals?: number;
  signal?: AbortSignal;
}

export interface Evaluation {
  x: number[];
  f: number;
}

export interface NelderMeadResult {
  best: Evaluation;
  evaluations: number;
  iterations: number;
  converged: boolean;
}

function bound(b: readonly number[] | number | undefined, i: number, fallback: number): number {
  if (b === undefined) return fallback;
  return typeof b === 'number' ? b : (b[i] ?? fallback);
}

export async function nelderMead(f: (x: number[]) => Promise<number>, x0: readonly number[], options: NelderMeadOptions): Promise<NelderMeadResult> {
  const n = x0.length;
  const step = options.step ?? 0.25;
  const fTol = options.fTolerance ?? 1e-6;
  const xTol = options.xTolerance ?? 1e-4;
  const scale = 10 ** (options.decimals ?? 4);
  const cache = new Map<string, number>();
  let evaluations = 0;
  const project = (x: readonly number[]): number[] =>
    x.map((v, i) => Math.round(Math.min(bound(options.upper, i, Infinity), Math.max(bound(options.lower, i, -Infinity), v)) * scale) / scale);
  class Budget extends Error {}
  const evaluate = async (raw: readonly number[]): Promise<Evaluation> => {
    const x = project(raw);
    const key = x.join(',');
    const hit = cache.get(key);
    if (hit !== undefined) return { x, f: hit };
    if (evaluations >= options.maxEvals) throw new Budget();
    throwIfAborted(options.signal);
    evaluations++;
    const value = await f(x);
    // A failed/NaN evaluation ranks last instead of poisoning the simplex.
    const fx = Number.isFinite(value) ? value : Infinity;
    cache.set(key, fx);
    return { x, f: fx };
  };

  let simplex: Evaluation[] = [];
  let iterations = 0;
  let converged = false;
  const best = (): Evaluation => simplex.reduce((a, b) => (b.f < a.f ? b : a));
  try {
    simplex.push(await evaluate(x0));
    for (let i = 0; i < n; i++) {
      const x = [...x0];
      // Step away from an upper bound rather than into it.
      x[i] = x[i]! + step <= bound(options.upper, i, Infinity) ? x[i]! + step : x[i]! - step;
      simplex.push(await evaluate(x));
    }
    for (;;) {
      simplex.sort((a, b) => a.f - b.f);
      const lo = simplex[0]!;
      const hi = simplex[n]!;
      const spread = Math.max(...simplex.map((v) => Math.max(...v.x.map((xi, i) => Math.abs(xi - lo.x[i]!)))));
      if (Math.abs(hi.f - lo.f) <= fTol * (1 + Math.abs(lo.f)) || spread <= xTol) {
        converged = true;
        break;
      }
      iterations++;
      const centroid = new Array<number>(n).fill(0);
      for (const v of simplex.slice(0, n)) for (let i = 0; i < n; i++) centroid[i]! += v.x[i]! / n;
      const along = (t: number): number[] => centroid.map((c, i) => c + t * (hi.x[i]! - c));
      const r = await evaluate(along(-1));
      if (r.f < lo.f) {
        const e = await evaluate(along(-2));
        simplex[n] = e.f < r.f ? e : r;
        continue;
      }
      if (r.f < simplex[n - 1]!.f) {
        simplex[n] = r;
        continue;
      }
      const c = r.f < hi.f ? await evaluate(along(-0.5)) : await evaluate(along(0.5));
      if (c.f < Math.min(r.f, hi.f)) {
        simplex[n] = c;
        continue;
      }
      const shrunk: Evaluation[] = [lo];
      for (const v of simplex.slice(1)) shrunk.push(await evaluate(v.x.map((xi, i) => lo.x[i]! + 0.5 * (xi - lo.x[i]!))));
      simplex = shrunk;
    }
  } catch (error) {
    if (!(error instanceof Budget)) throw error;
  }
  return { best: best(), evaluations, iterations, converged };
}
