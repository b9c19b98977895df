import { InputError } from '../errors.ts';
import { mulberry32 } from '../random.ts';

/**
 * Choosing the next token from a logits vector (V): greedy argmax, or a draw from
 * softmax(logits / temperature) restricted to the top-k logits, with a seeded PRNG so the same
 * seed gives the same text. All arithmetic is float64 on the CPU: V values per token is cheap next
 * to the forward pass that produced them.
 */
export interface SamplingOptions {
  /** 0 = greedy (argmax). Otherwise logits are divided by it before the softmax. */
  temperature: number;
  /** Keep only the k largest logits (ties broken by lower id); 0 or absent = all. */
  topK?: number;
}

/** mulberry32 (src/engine/random.ts) from a user-given seed, refused unless it is a finite number. */
export function seededRandom(seed: number): () => number {
  if (!Number.isFinite(seed)) throw new InputError(`seed must be a finite number (got ${seed})`);
  return mulberry32(Math.trunc(seed));
}

function checkLogits(logits: ArrayLike<number>): void {
  if (logits.length === 0) throw new InputError('cannot sample from an empty logits vector');
  for (let i = 0; i < logits.length; i++) {
    if (Number.isNaN(logits[i]!)) throw new InputError(`logit ${i} is NaN (the forward pass produced invalid values)`);
  }
}

/** Index of the largest logit; the lowest index among equal maxima. */
export function argmax(logits: ArrayLike<number>): number {
  checkLogits(logits);
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

function checkOptions(o: SamplingOptions): void {
  if (!Number.isFinite(o.temperature) || o.temperature < 0) throw new InputError(`temperature must be ≥ 0 (got ${o.temperature})`);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) throw new InputError(`top-k must be a non-negative integer (got ${o.topK})`);
}

/** Ids of the k largest logits in increasing id order (all ids when k is 0 or ≥ V). */
export function topKIds(logits: ArrayLike<number>, k: number | undefined): number[] {
  const V = logits.length;
  if (!k || k >= V) return Array.from({ length: V }, (_, i) => i);
  const sorted = Float64Array.from(logits).sort();
  const threshold = sorted[V - k]!;
  let above = 0;
  for (let i = 0; i < V; i++) if (logits[i]! > threshold) above++;
  // Logits equal to the threshold fill the remaining places in id order.
  let ties = k - above;
  const out: number[] = [];
  for (let i = 0; i < V; i++) {
    const x = logits[i]!;
    if (x > threshold) out.push(i);
    else if (x === threshold && ties > 0) {
      out.push(i);
      ties--;
    }
  }
  return out;
}

/**
 * The distribution a draw follows: probabilities (V), zero outside the top k. Temperature 0 puts
 * all mass on the argmax.
 */
export function samplingDistribution(logits: ArrayLike<number>, options: SamplingOptions): Float64Array {
  checkLogits(logits);
  checkOptions(options);
  const p = new Float64Array(logits.length);
  if (options.temperature === 0) {
    p[argmax(logits)] = 1;
    return p;
  }
  const ids = topKIds(logits, options.topK);
  let max = -Infinity;
  for (const i of ids) max = Math.max(max, logits[i]!);
  if (max === -Infinity) throw new InputError('every candidate logit is -Infinity');
  let sum = 0;
  for (const i of ids) {
    const e = Math.exp((logits[i]! - max) / options.temperature);
    p[i] = e;
    sum += e;
  }
  for (const i of ids) p[i]! /= sum;
  return p;
}

/** One token: argmax at temperature 0, else an inverse-CDF draw over the distribution in id order. */
export function sampleToken(logits: ArrayLike<number>, options: SamplingOptions, random: () => number): number {
  if (options.temperature === 0) {
    checkOptions(options);
    return argmax(logits);
  }
  const p = samplingDistribution(logits, options);
  const u = random();
  let cum = 0;
  let last = -1;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    cum += p[i]!;
    last = i;
    if (u < cum) return i;
  }
  // Rounding can leave cum a hair below 1: the draw belongs to the last candidate.
  return last;
}
