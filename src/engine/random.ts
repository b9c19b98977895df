/**
 * The project's one seeded PRNG, mulberry32: a 32-bit state advanced by a Weyl step and mixed by
 * two multiply-xorshift rounds. Uniform numbers in [0, 1); the same seed gives the same stream in
 * every JS engine, so training batches, sampled tokens, generated fixtures and random test data
 * can be replayed from their seed.
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
