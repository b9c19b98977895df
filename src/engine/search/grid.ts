import { InputError } from '../errors.ts';

/**
 * The paper's coefficient search (DEM, arXiv 2406.15570, §3): a grid over the coefficients ω_i of
 * the distribution vectors, every point scored by validation perplexity. Axes are given as explicit
 * values or as min/max/step; an optional sum-to-one constraint keeps only points with Σ ω = 1
 * (within `sumTolerance`), which is how data-mixing ratios are usually compared.
 */
export type AxisSpec = { values: readonly number[] } | { min: number; max: number; step: number };

export interface GridSpec {
  axes: readonly AxisSpec[];
  sumToOne?: boolean;
  /** |Σ ω − 1| allowed when sumToOne; default 1e-9 (grid values are rounded to 1e-9 first). */
  sumTolerance?: number;
  /** Refuse grids larger than this (a typo in a step should not queue a million merges). Default 10 000. */
  maxPoints?: number;
}

/** Values are rounded to 1e-9 so that 0.1 + 0.2 steps compare and print cleanly. */
const clean = (x: number): number => Math.round(x * 1e9) / 1e9;

export function axisValues(axis: AxisSpec, index = 0): number[] {
  if ('values' in axis) {
    if (axis.values.length === 0) throw new InputError(`coefficient ${index + 1}: give at least one value`);
    for (const v of axis.values) if (!Number.isFinite(v)) throw new InputError(`coefficient ${index + 1}: ${v} is not a finite number`);
    return [...new Set(axis.values.map(clean))];
  }
  const { min, max, step } = axis;
  if (![min, max, step].every(Number.isFinite)) throw new InputError(`coefficient ${index + 1}: min, max and step must be finite numbers`);
  if (step <= 0) throw new InputError(`coefficient ${index + 1}: step must be positive (got ${step})`);
  if (max < min) throw new InputError(`coefficient ${index + 1}: max ${max} is below min ${min}`);
  const count = Math.floor((max - min) / step + 1e-9) + 1;
  return Array.from({ length: count }, (_, i) => clean(min + i * step));
}

/** Every grid point (row-major: the last axis varies fastest), filtered by the constraint. */
export function gridPoints(spec: GridSpec): number[][] {
  if (spec.axes.length === 0) throw new InputError('a grid needs at least one coefficient');
  const values = spec.axes.map((a, i) => axisValues(a, i));
  const total = values.reduce((n, v) => n * v.length, 1);
  const maxPoints = spec.maxPoints ?? 10_000;
  if (total > maxPoints) throw new InputError(`the grid has ${total} points (limit ${maxPoints}): use fewer values or a larger step`);
  const tol = spec.sumTolerance ?? 1e-9;
  const out: number[][] = [];
  const point = new Array<number>(values.length).fill(0);
  const visit = (axis: number): void => {
    if (axis === values.length) {
      if (!spec.sumToOne || Math.abs(point.reduce((s, x) => s + x, 0) - 1) <= tol) out.push([...point]);
      return;
    }
    for (const v of values[axis]!) {
      point[axis] = v;
      visit(axis + 1);
    }
  };
  visit(0);
  if (out.length === 0) throw new InputError('no grid point satisfies Σ ω = 1: widen the ranges or turn the constraint off');
  return out;
}
