import { describe, expect, it } from 'vitest';
import { CancelledError, InputError } from '../errors.ts';
import { axisValues, etaSeconds, gridPoints, nelderMead, weightedMean } from './index.ts';

describe('grid', () => {
  it('expands min/max/step without float drift and keeps the end point', () => {
    expect(axisValues({ min: 0, max: 1, step: 0.1 })).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
    expect(axisValues({ min: -1, max: 2, step: 1.5 })).toEqual([-1, 0.5, 2]);
    expect(axisValues({ values: [0.5, 0.5, 1] })).toEqual([0.5, 1]);
  });

  it('enumerates the product row-major and applies the sum-to-one constraint', () => {
    expect(gridPoints({ axes: [{ values: [0, 1] }, { values: [2, 3, 4] }] })).toEqual([
      [0, 2], [0, 3], [0, 4], [1, 2], [1, 3], [1, 4],
    ]);
    const simplex = gridPoints({ axes: [0, 1, 2].map(() => ({ min: 0, max: 1, step: 0.25 })), sumToOne: true });
    // Compositions of 4 quarters into 3 parts: C(6, 2) = 15.
    expect(simplex).toHaveLength(15);
    for (const p of simplex) expect(Math.abs(p.reduce((s, x) => s + x, 0) - 1)).toBeLessThan(1e-12);
  });

  it('refuses bad axes and empty or huge grids with clear messages', () => {
    expect(() => axisValues({ min: 0, max: 1, step: 0 })).toThrow(/step must be positive/);
    expect(() => axisValues({ min: 1, max: 0, step: 0.1 })).toThrow(/below min/);
    expect(() => gridPoints({ axes: [{ values: [2] }, { values: [3] }], sumToOne: true })).toThrow(/no grid point/);
    expect(() => gridPoints({ axes: [0, 1, 2, 3].map(() => ({ min: 0, max: 1, step: 0.01 })) })).toThrow(InputError);
  });
});

describe('objective', () => {
  it('averages, optionally weighted', () => {
    expect(weightedMean([2, 4, 9])).toBe(5);
    expect(weightedMean([2, 4], [3, 1])).toBe(2.5);
    expect(() => weightedMean([1, 2], [0, 0])).toThrow(/sum to 0/);
    expect(() => weightedMean([])).toThrow(/validation set/);
  });

  it('estimates the time left at the mean pace', () => {
    expect(etaSeconds(0, 10, 0)).toBeUndefined();
    expect(etaSeconds(2, 10, 4000)).toBe(16);
    expect(etaSeconds(10, 10, 4000)).toBe(0);
  });
});

describe('Nelder–Mead', () => {
  // Random minimiser each run so the optimiser cannot be tuned to one point.
  const target = [Math.random() * 1.5 - 0.25, Math.random() * 1.5 - 0.25, Math.random() * 1.5 - 0.25];

  it('finds the minimum of a shifted quadratic bowl with far fewer evaluations than a grid', async () => {
    let calls = 0;
    const f = async (x: number[]): Promise<number> => {
      calls++;
      return 3 + x.reduce((s, xi, i) => s + (i + 1) * (xi - target[i]!) ** 2, 0);
    };
    const r = await nelderMead(f, [1, 1, 1], { maxEvals: 200, step: 0.3, lower: -1, upper: 2, xTolerance: 1e-4, decimals: 6 });
    expect(calls).toBe(r.evaluations);
    expect(r.evaluations).toBeLessThanOrEqual(200);
    for (const [i, xi] of r.best.x.entries()) expect(Math.abs(xi - target[i]!)).toBeLessThan(2e-3);
    expect(r.best.f - 3).toBeLessThan(1e-5);
    // The paper's grid at step 0.01 over [-1, 2]^3 would need 301^3 ≈ 2.7e7 merges.
    expect(r.evaluations).toBeLessThan(301 ** 3 / 1e4);
  });

  it('minimises Rosenbrock in 2-D within its budget', async () => {
    const f = async ([x, y]: number[]): Promise<number> => (1 - x!) ** 2 + 100 * (y! - x! * x!) ** 2;
    const r = await nelderMead(f, [-0.5, 1.5], { maxEvals: 400, step: 0.5, decimals: 8, xTolerance: 1e-7, fTolerance: 1e-12 });
    expect(Math.abs(r.best.x[0]! - 1)).toBeLessThan(1e-2);
    expect(Math.abs(r.best.x[1]! - 1)).toBeLessThan(2e-2);
  });

  it('respects the budget, the box, and cancellation', async () => {
    const seen: number[][] = [];
    const f = async (x: number[]): Promise<number> => (seen.push(x), -x[0]! - x[1]!);
    const r = await nelderMead(f, [0, 0], { maxEvals: 12, lower: [-1, -1], upper: [2, 0.5] });
    expect(r.evaluations).toBe(12);
    for (const x of seen) expect(x[0]! <= 2 && x[1]! <= 0.5 && x[0]! >= -1 && x[1]! >= -1).toBe(true);
    const controller = new AbortController();
    const g = async (x: number[]): Promise<number> => {
      controller.abort();
      return x[0]!;
    };
    await expect(nelderMead(g, [0], { maxEvals: 50, signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
  });
});
