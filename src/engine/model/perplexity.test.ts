import { describe, expect, it } from 'vitest';
import { perplexity, splitWindows, type WindowScorer } from './perplexity.ts';
import { CancelledError, InputError } from '../errors.ts';

// A scorer whose NLL for predicting token b after the window prefix is a known function, so
// the expected perplexity can be computed independently by brute force.
const nllOf = (prev: number, next: number): number => ((prev * 7 + next * 3) % 11) / 10 + 0.05;
const scorer: WindowScorer = {
  async nllWindows(windows) {
    return windows.map((w) => w.slice(1).reduce((s, t, j) => s + nllOf(w[j]!, t), 0));
  },
};

describe('perplexity windows (the definition in perplexity.ts)', () => {
  it('splits consecutive windows and skips windows of < 2 tokens', () => {
    expect(splitWindows([1, 2, 3, 4, 5, 6, 7], 3)).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(splitWindows([1, 2, 3, 4, 5, 6, 7, 8], 3)).toEqual([[1, 2, 3], [4, 5, 6], [7, 8]]);
    expect(() => splitWindows([1, 2], 1)).toThrow(InputError);
  });

  it('matches a brute-force computation on random ids', async () => {
    for (const [n, context] of [[1, 4], [97, 16], [64, 64], [65, 64], [300, 7]] as const) {
      const ids = Array.from({ length: n }, (_, i) => (i * 2654435761) % 50);
      if (n < 2) {
        await expect(perplexity(scorer, ids, { context })).rejects.toThrow(InputError);
        continue;
      }
      let sum = 0;
      let count = 0;
      for (let s = 0; s < n; s += context) {
        for (let j = s + 1; j < Math.min(n, s + context); j++) {
          sum += nllOf(ids[j - 1]!, ids[j]!);
          count++;
        }
      }
      const r = await perplexity(scorer, ids, { context, batchWindows: 3 });
      expect(r.predicted).toBe(count);
      expect(r.tokens).toBe(n);
      expect(r.nllSum).toBeCloseTo(sum, 10);
      expect(r.ppl).toBeCloseTo(Math.exp(sum / count), 10);
    }
  });

  it('with a BOS: every window after the BOS as context, each text token predicted once, windows of < 2 tokens still skipped', async () => {
    const bos = 49;
    const seen: (readonly number[])[] = [];
    const recording: WindowScorer = { nllWindows: async (windows) => (seen.push(...windows), scorer.nllWindows(windows)) };
    for (const [n, context] of [[97, 16], [64, 64], [65, 64], [300, 7], [2, 5]] as const) {
      seen.length = 0;
      const ids = Array.from({ length: n }, (_, i) => (i * 2654435761) % 50);
      let sum = 0;
      let count = 0;
      for (let s = 0; s < n; s += context) {
        const w = ids.slice(s, s + context);
        if (w.length < 2) continue;
        w.forEach((t, j) => (sum += nllOf(j === 0 ? bos : w[j - 1]!, t)));
        count += w.length;
      }
      const r = await perplexity(recording, ids, { context, batchWindows: 3, bos });
      expect(r.predicted).toBe(count);
      expect(r.tokens).toBe(n);
      expect(r.nllSum).toBeCloseTo(sum, 10);
      expect(seen.every((w) => w[0] === bos && w.length <= context + 1)).toBe(true);
      expect(seen.flatMap((w) => w.slice(1))).toEqual(ids.slice(0, seen.length && n % context === 1 ? n - 1 : n));
    }
  });

  it('reports progress and stops when cancelled', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => i % 13);
    const seen: number[] = [];
    const controller = new AbortController();
    const run = perplexity(scorer, ids, {
      context: 10,
      batchWindows: 2,
      signal: controller.signal,
      onProgress: (done) => {
        seen.push(done);
        if (done >= 4) controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toEqual([0, 2, 4]);
  });
});
