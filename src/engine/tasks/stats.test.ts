import { describe, expect, it } from 'vitest';
import { argmaxFirst, averageRanks, meanStderr, rankCorrelation } from './stats.ts';

describe('task statistics', () => {
  it('argmaxFirst: the largest value, ties to the lower index', () => {
    expect(argmaxFirst([-3, -1, -2])).toBe(1);
    expect(argmaxFirst([-1, -2, -1])).toBe(0);
    expect(argmaxFirst([-5, -4, -4])).toBe(1);
  });

  it('meanStderr: sqrt(p(1 − p)/(n − 1)), the sample standard deviation over √n', () => {
    const r = meanStderr([true, true, true, false]);
    expect(r.mean).toBe(0.75);
    expect(r.stderr).toBeCloseTo(Math.sqrt((0.75 * 0.25) / 3), 15);
    // The same from the sample variance of the 0/1 outcomes.
    const xs = [1, 1, 1, 0];
    const variance = xs.reduce((s, x) => s + (x - 0.75) ** 2, 0) / (xs.length - 1);
    expect(r.stderr).toBeCloseTo(Math.sqrt(variance / xs.length), 15);
    expect(meanStderr([true]).stderr).toBeNaN();
    expect(meanStderr([false, false]).stderr).toBe(0);
  });

  it("rankCorrelation: Spearman's ρ with average ranks for ties", () => {
    expect(averageRanks([10, 30, 20, 20])).toEqual([1, 4, 2.5, 2.5]);
    expect(rankCorrelation([1, 2, 3, 4], [10, 20, 30, 40])).toBeCloseTo(1, 12);
    expect(rankCorrelation([1, 2, 3, 4], [0.9, 0.5, 0.4, 0.1])).toBeCloseTo(-1, 12);
    // Ranks a = 1, 2, 3, 4, 5; b = 2, 1, 4, 3, 5: ρ = 1 − 6·4 / (5·24) = 0.8 (no ties).
    expect(rankCorrelation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])).toBeCloseTo(0.8, 12);
    // With ties: a = 1, 2.5, 2.5, 4; b = 1, 2, 3, 4 → Pearson of the ranks.
    const a = [1, 2.5, 2.5, 4];
    const b = [1, 2, 3, 4];
    const m = 2.5;
    const cov = a.reduce((s, x, i) => s + (x - m) * (b[i]! - m), 0);
    const want = cov / Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) * b.reduce((s, x) => s + (x - m) ** 2, 0));
    expect(rankCorrelation([3, 5, 5, 9], [1, 2, 3, 4])).toBeCloseTo(want, 12);
    expect(rankCorrelation([1, 1, 1], [1, 2, 3])).toBeNaN();
    expect(rankCorrelation([1, 2], [1, 2])).toBeNaN();
  });
});
