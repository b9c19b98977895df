import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.ts';
import { argmax, sampleToken, samplingDistribution, seededRandom, topKIds } from './sampling.ts';
import { freshSeed, randn, rng } from './testutil.ts';

/** softmax(logits / T) over the k largest, written independently of sampling.ts (sort by value). */
function expected(logits: number[], T: number, k: number): number[] {
  const order = logits.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const keep = new Set(order.slice(0, k || logits.length).map(([, i]) => i));
  const w = logits.map((x, i) => (keep.has(i) ? Math.exp(x / T) : 0));
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / s);
}

describe('sampling', () => {
  const logits = [1.5, -0.3, 2.2, 0.0, 2.2, -4.0, 0.9, 1.1, -1.0, 0.4, 3.0];

  it('samples follow softmax(logits / T) restricted to the top k (chi-square, 40k draws)', () => {
    for (const [T, k] of [
      [1, 0],
      [0.7, 5],
      [2.5, 3],
    ] as const) {
      const p = samplingDistribution(logits, { temperature: T, topK: k });
      const want = expected(logits, T, k);
      want.forEach((w, i) => expect(Math.abs(p[i]! - w), `T ${T} k ${k} id ${i}`).toBeLessThan(1e-12));
      const seed = freshSeed();
      const random = seededRandom(seed);
      const N = 40000;
      const counts = new Array<number>(logits.length).fill(0);
      for (let n = 0; n < N; n++) counts[sampleToken(logits, { temperature: T, topK: k }, random)]!++;
      let chi2 = 0;
      let cells = 0;
      counts.forEach((c, i) => {
        if (want[i] === 0) {
          expect(c, `T ${T} k ${k}: id ${i} is outside the top ${k} (seed ${seed})`).toBe(0);
          return;
        }
        chi2 += (c - N * want[i]!) ** 2 / (N * want[i]!);
        cells++;
      });
      // 99.99th percentile of chi-square with ≤ 10 degrees of freedom is < 36.
      console.log(`T ${T}, top-k ${k || 'all'}: chi-square ${chi2.toFixed(2)} over ${cells} ids (seed ${seed})`);
      expect(chi2, `seed ${seed}`).toBeLessThan(36);
    }
  });

  it('top-k never picks outside the k best; ties at the boundary go to the lower id', () => {
    const seed = freshSeed();
    const next = rng(seed);
    const random = seededRandom(seed);
    for (let trial = 0; trial < 200; trial++) {
      const V = 5 + (trial % 37);
      // Coarse values so ties happen.
      const l = Array.from(randn(next, V, 2), (x) => Math.round(x * 2) / 2);
      const k = 1 + (trial % 4);
      const ids = topKIds(l, k);
      expect(ids.length).toBe(k);
      const kth = [...l].sort((a, b) => b - a)[k - 1]!;
      for (const i of ids) expect(l[i]!).toBeGreaterThanOrEqual(kth);
      for (let i = 0; i < V; i++) if (l[i]! > kth) expect(ids).toContain(i);
      const tied = l.map((x, i) => [x, i] as const).filter(([x]) => x === kth).map(([, i]) => i);
      const tiedKept = ids.filter((i) => l[i] === kth);
      expect(tiedKept, `seed ${seed}`).toEqual(tied.slice(0, tiedKept.length));
      for (let n = 0; n < 20; n++) expect(ids).toContain(sampleToken(l, { temperature: 1.3, topK: k }, random));
    }
    expect(topKIds(logits, 1)).toEqual([10]);
    expect(topKIds(logits, 0)).toHaveLength(logits.length);
    expect(topKIds(logits, 99)).toHaveLength(logits.length);
  });

  it('temperature → 0 is greedy; temperature 0 is argmax; top-k 1 is argmax', () => {
    const seed = freshSeed();
    const next = rng(seed);
    const random = seededRandom(seed);
    for (let trial = 0; trial < 300; trial++) {
      const l = Array.from(randn(next, 50 + trial, 3));
      const best = argmax(l);
      expect(l.every((x) => x <= l[best]!)).toBe(true);
      expect(sampleToken(l, { temperature: 0 }, random)).toBe(best);
      expect(sampleToken(l, { temperature: 1e-6 }, random), `seed ${seed}`).toBe(best);
      expect(sampleToken(l, { temperature: 5, topK: 1 }, random)).toBe(best);
    }
    // Equal maxima: the lowest id.
    expect(argmax([0, 2, 1, 2])).toBe(1);
  });

  it('same seed → same draws; another seed → different draws', () => {
    const draw = (seed: number): number[] => {
      const random = seededRandom(seed);
      return Array.from({ length: 64 }, () => sampleToken(logits, { temperature: 1.5 }, random));
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    const r = seededRandom(7);
    for (let i = 0; i < 1000; i++) {
      const u = r();
      expect(u >= 0 && u < 1).toBe(true);
    }
  });

  it('rejects NaN logits, negative temperature and bad top-k with typed errors', () => {
    const random = seededRandom(1);
    expect(() => sampleToken([0, Number.NaN], { temperature: 1 }, random)).toThrow(InputError);
    expect(() => argmax([])).toThrow(InputError);
    expect(() => sampleToken(logits, { temperature: -1 }, random)).toThrow(/temperature/);
    expect(() => sampleToken(logits, { temperature: 1, topK: 1.5 }, random)).toThrow(/top-k/);
    expect(() => seededRandom(Number.NaN)).toThrow(InputError);
  });
});
