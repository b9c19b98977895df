import { describe, expect, it } from 'vitest';
import { mulberry32 } from './random.ts';

describe('mulberry32', () => {
  // The 32-bit outputs the committed fixtures (scripts/make-fixtures.ts) and the demo's training
  // batches were drawn with: a change of stream would silently change them.
  it('gives the stream the fixtures were generated with', () => {
    const first3 = (seed: number): number[] => {
      const r = mulberry32(seed);
      return [r(), r(), r()].map((x) => x * 4294967296);
    };
    expect(first3(0)).toEqual([1144304738, 1416247, 958946056]);
    expect(first3(1)).toEqual([2693262067, 11749833, 2265367787]);
    expect(first3(7)).toEqual([50271532, 266108690, 4195786334]);
    expect(first3(0xffffffff)).toEqual([3850105811, 813802916, 3073704848]);
  });

  it('reads the seed modulo 2^32 and stays in [0, 1)', () => {
    const a = mulberry32(-1);
    const b = mulberry32(0xffffffff);
    for (let i = 0; i < 1000; i++) {
      const x = a();
      expect(x).toBe(b());
      expect(x >= 0 && x < 1).toBe(true);
    }
  });
});
