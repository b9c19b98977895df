/**
 * Float64 references of the merge methods (mergekit semantics, https://github.com/arcee-ai/mergekit)
 * and the helpers the GPU paths share with them: the DARE RNG (bit-identical to
 * shaders/common/rng.wgsl), the rank arithmetic of the magnitude trims, the rescale factors and
 * slerp's factors.
 *
 * Conventions, deliberately the same on CPU and GPU:
 * - Δ_i = θ_i − θ_base. Trim masks (ties, breadcrumbs) rank |Δ_i| rounded to f32, the precision
 *   the GPU forms Δ in (mergekit ranks in its compute dtype: float32 with the exported YAML's
 *   `dtype: float32`), so CPU and GPU masks agree exactly; everything after the mask is float64 here.
 * - Magnitude trims keep exactly the ranks asked for (k = int(density·n) for ties, as mergekit),
 *   ranking by |Δ| and, among equal magnitudes, lower index first (mergekit's argsort breaks such
 *   ties arbitrarily; ours is deterministic and the same in every path and chunking).
 */

// ---------------------------------------------------------------- RNG (shaders/common/rng.wgsl)

export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

export function rowKey(seed: number, tensor: number, model: number): number {
  return pcgHash((model ^ pcgHash((tensor ^ pcgHash(seed >>> 0)) >>> 0)) >>> 0);
}

export function elementHash(key: number, element: number): number {
  return pcgHash((pcgHash(element) ^ key) >>> 0);
}

/** Largest u32 h with h < density · 2^32: an element is kept when its hash is <= this. */
export function dareKeepThreshold(density: number): number {
  return Math.min(2 ** 32 - 1, Math.max(0, Math.ceil(density * 2 ** 32) - 1));
}

// ---------------------------------------------------------------- ranks and selection

/** Bits of |x| as f32: ordered like the magnitudes (NaN above Inf). */
export function absBits(x: number): number {
  F32[0] = x;
  return U32[0]! & 0x7fffffff;
}
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Rank 0 in a band means "above everything": both key words 0xFFFFFFFF. */
export const ABOVE_ALL = 0xffffffff;

/**
 * Element indices ordered by their select key, largest first: |Δ| bits descending, then index
 * ascending (the key's second word is ~index), as shaders/merge/select.wgsl ranks them.
 */
export function keyOrder(bits: ArrayLike<number>): Uint32Array {
  const order = Uint32Array.from({ length: bits.length }, (_, i) => i);
  return order.sort((a, b) => bits[b]! - bits[a]! || a - b);
}

/** The key (hi = |Δ| bits, lo = ~index) of the k-th largest (1-based); 0 gives ABOVE_ALL. */
export function kthLargestKey(bits: ArrayLike<number>, k: number, order = keyOrder(bits)): { hi: number; lo: number } {
  if (k === 0) return { hi: ABOVE_ALL, lo: ABOVE_ALL };
  const i = order[k - 1];
  if (i === undefined) throw new RangeError(`rank ${k} outside 1..${bits.length}`);
  return { hi: bits[i]!, lo: ~i >>> 0 };
}

/**
 * Band of ranks [lo, hi] (1-based, k-th largest) an element's |Δ| must lie within to be kept;
 * rank 0 is ABOVE_ALL. `magnitude` is ties' trim: keep the top floor(density·n) (mergekit's
 * int()), at least one when density > 0; density >= 1 keeps everything.
 */
export function magnitudeRanks(n: number, density: number): { lo: number; hi: number } {
  if (density >= 1) return { lo: n, hi: 1 };
  let k = Math.floor(density * n);
  if (k === 0 && density > 0) k = 1;
  return { lo: k, hi: 0 };
}

/**
 * breadcrumbs (mergekit magnitude_outliers): drop the floor(gamma·n) largest and as many of the
 * smallest as leave floor(density·n); when that is negative the top cut shrinks instead.
 */
export function outlierRanks(n: number, density: number, gamma: number): { lo: number; hi: number } {
  if (density >= 1) return { lo: n, hi: 1 };
  const target = Math.floor(density * n);
  let top = Math.floor(gamma * n);
  const bottom = n - target - top;
  if (bottom < 0) top += bottom;
  if (target === 0) return { lo: 0, hi: 1 }; // lo above everything: keep none
  return { lo: top + target, hi: top + 1 };
}

/** Keep mask of a row of f32-rounded deltas for a rank band: exactly the ranks [max(hi, 1), lo] of keyOrder. */
export function bandMask(delta32: ArrayLike<number>, ranks: { lo: number; hi: number }): Uint8Array {
  const bits = Uint32Array.from({ length: delta32.length }, (_, i) => absBits(delta32[i]!));
  const order = keyOrder(bits);
  const keep = new Uint8Array(bits.length);
  for (let r = Math.max(ranks.hi, 1); r <= ranks.lo; r++) keep[order[r - 1]!] = 1;
  return keep;
}

// ---------------------------------------------------------------- rescale

/**
 * What multiplies a sparsified Δ's kept elements: nothing ('none', mergekit's `rescale: false`),
 * 1/density (the DARE paper's rescale, and mergekit's before it switched), or the ratio that
 * restores the Δ's L1 norm ('l1', mergekit's `rescale: true`).
 */
export type RescaleMode = 'none' | 'density' | 'l1';

/** mergekit's tolerance below which a norm is not rescaled (sparsify.rescaled_masked_tensor). */
export const RESCALE_EPS = 1e-7;

/** Σ|Δ| / Σ|kept Δ|, or 1 when either is below RESCALE_EPS (mergekit then leaves the masked Δ as is). */
export function l1RescaleFactor(total: number, kept: number): number {
  return total < RESCALE_EPS || kept < RESCALE_EPS ? 1 : total / kept;
}

// ---------------------------------------------------------------- methods

export interface GeneralizedOptions {
  /** none: task arithmetic; magnitude: ties; random: DARE; outliers: breadcrumbs. */
  sparsify: 'none' | 'magnitude' | 'random' | 'outliers';
  consensus: boolean;
  normalize: boolean;
  lambda: number;
  densities: readonly number[];
  gammas?: readonly number[];
  seed: number;
  tensorIndex: number;
  /** Default: 'density' for random drops, 'none' otherwise. */
  rescale?: RescaleMode;
  /** Filled with |Σ v| / Σ |v| per element: how clear the sign election was (0: a coin flip). */
  margin?: Float64Array;
  /** Elements whose sign election is reversed (tests: the other answer of a coin-flip election). */
  flip?: Uint8Array;
}

/** θ − base per model, and the same rounded to f32 (what the GPU holds and ranks). */
function deltas(base: Float64Array, models: readonly Float64Array[]): { d: Float64Array[]; d32: Float32Array[] } {
  const d = models.map((m) => m.map((x, i) => x - base[i]!));
  return { d, d32: models.map((m) => Float32Array.from(m, (x, i) => x - base[i]!)) };
}

/** mergekit's generalized task arithmetic: sparsify each Δ_i, weight, optional sign consensus. */
export function generalizedTaskArithmetic(
  base: Float64Array,
  models: readonly Float64Array[],
  weights: readonly number[],
  o: GeneralizedOptions,
): Float64Array {
  const n = base.length;
  const N = models.length;
  const { d, d32 } = deltas(base, models);
  const keep: (Uint8Array | undefined)[] = d32.map((row, r) => {
    const density = o.densities[r]!;
    if (o.sparsify === 'magnitude') return bandMask(row, magnitudeRanks(n, density));
    if (o.sparsify === 'outliers') return bandMask(row, outlierRanks(n, density, o.gammas?.[r] ?? 0));
    if (o.sparsify === 'random') {
      const key = rowKey(o.seed, o.tensorIndex, r);
      const thr = dareKeepThreshold(density);
      return Uint8Array.from({ length: n }, (_, i) => (elementHash(key, i) <= thr ? 1 : 0));
    }
    return undefined;
  });
  const rescale = o.rescale ?? (o.sparsify === 'random' ? 'density' : 'none');
  const scaled = (w: number, r: number): number => {
    const mask = keep[r];
    if (!mask || rescale === 'none') return w;
    if (rescale === 'density') return w / o.densities[r]!;
    if (o.densities[r]! >= 1) return w;
    let total = 0;
    let kept = 0;
    d32[r]!.forEach((x, i) => {
      total += Math.abs(x);
      if (mask[i]) kept += Math.abs(x);
    });
    return w * l1RescaleFactor(total, kept);
  };
  const coef = weights.map(scaled);
  const sumW = weights.reduce((a, b) => a + b, 0);
  const out = new Float64Array(n);
  const v = new Float64Array(N);
  for (let i = 0; i < n; i++) {
    let s = 0;
    let abs = 0;
    for (let r = 0; r < N; r++) {
      v[r] = keep[r] && !keep[r]![i] ? 0 : coef[r]! * d[r]![i]!;
      s += v[r]!;
      abs += Math.abs(v[r]!);
    }
    let mixed = s;
    if (o.consensus) {
      const positive = (s >= 0) !== (o.flip?.[i] === 1);
      let acc = 0;
      let div = 0;
      for (let r = 0; r < N; r++) {
        if (v[r] !== 0 && v[r]! > 0 === positive) {
          acc += v[r]!;
          div += weights[r]!;
        }
      }
      mixed = o.normalize ? acc / (div === 0 ? 1 : div) : acc;
      if (o.margin) o.margin[i] = abs === 0 ? 1 : Math.abs(s) / abs;
    } else if (o.normalize) {
      mixed = s / (Math.abs(sumW) < 1e-8 ? 1 : sumW);
    }
    out[i] = base[i]! + o.lambda * mixed;
  }
  return out;
}

/** DEM / task arithmetic: θ + λ Σ ω_i Δ_i (/ Σ ω_i when normalize). */
export function taskArithmetic(base: Float64Array, models: readonly Float64Array[], weights: readonly number[], lambda: number, normalize: boolean): Float64Array {
  return generalizedTaskArithmetic(base, models, weights, {
    sparsify: 'none', consensus: false, normalize, lambda, densities: weights.map(() => 1), seed: 0, tensorIndex: 0,
  });
}

/** Σ w_i θ_i (/ Σ w_i when normalize; a zero sum divides by 1). */
export function linear(models: readonly Float64Array[], weights: readonly number[], normalize: boolean): Float64Array {
  const n = models[0]?.length ?? 0;
  const sumW = weights.reduce((a, b) => a + b, 0);
  const div = normalize && sumW !== 0 ? sumW : 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let r = 0; r < models.length; r++) s += weights[r]! * models[r]![i]!;
    out[i] = s / div;
  }
  return out;
}

/** mergekit's slerp DOT_THRESHOLD and the norm below which a vector is not normalised. */
export const DOT_THRESHOLD = 0.9995;
export const SLERP_EPS = 1e-8;

/**
 * Factors (s0, s1) with slerp(t, v0, v1) = s0·v0 + s1·v1, from a·b, |a|², |b|² (mergekit:
 * normalise copies to get the angle; near-parallel (|cos| > DOT_THRESHOLD) falls back to lerp).
 */
export function slerpFactors(t: number, dot: number, aa: number, bb: number): { s0: number; s1: number; lerp: boolean } {
  const na = Math.sqrt(aa);
  const nb = Math.sqrt(bb);
  const cos = dot / ((na > SLERP_EPS ? na : 1) * (nb > SLERP_EPS ? nb : 1));
  if (!(Math.abs(cos) <= DOT_THRESHOLD)) return { s0: 1 - t, s1: t, lerp: true };
  const theta0 = Math.acos(cos);
  const sin0 = Math.sin(theta0);
  const thetaT = theta0 * t;
  return { s0: Math.sin(theta0 - thetaT) / sin0, s1: Math.sin(thetaT) / sin0, lerp: false };
}

export function slerp(t: number, v0: Float64Array, v1: Float64Array): Float64Array {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < v0.length; i++) {
    dot += v0[i]! * v1[i]!;
    aa += v0[i]! * v0[i]!;
    bb += v1[i]! * v1[i]!;
  }
  const { s0, s1 } = slerpFactors(t, dot, aa, bb);
  return v0.map((x, i) => s0 * x + s1 * v1[i]!);
}

/** cos of the angle between two vectors from a·b, |a|², |b|²; 0 when either is zero. */
export function cosine(dot: number, aa: number, bb: number): number {
  const d = Math.sqrt(aa * bb);
  return d > 0 ? dot / d : 0;
}

/**
 * Model Stock (Jang et al. 2024, mergekit model_stock): t = N·cos / (1 + (N − 1)·cos) with cos the
 * mean pairwise cosine of the deltas; result t·mean(θ_i) + (1 − t)·θ_base = θ + (t/N) Σ Δ_i.
 */
export function modelStockRatio(N: number, pairCosines: readonly number[]): number {
  const cos = pairCosines.reduce((a, b) => a + b, 0) / pairCosines.length;
  return (N * cos) / (1 + (N - 1) * cos);
}

export function modelStock(base: Float64Array, models: readonly Float64Array[]): Float64Array {
  const N = models.length;
  const d = models.map((m) => m.map((x, i) => x - base[i]!));
  const cosines: number[] = [];
  for (let i = 0; i < N; i++) {
    for (let j = i + 1; j < N; j++) {
      let dot = 0;
      let aa = 0;
      let bb = 0;
      d[i]!.forEach((x, e) => {
        const y = d[j]![e]!;
        dot += x * y;
        aa += x * x;
        bb += y * y;
      });
      cosines.push(cosine(dot, aa, bb));
    }
  }
  const t = modelStockRatio(N, cosines);
  return base.map((x, e) => x + (t / N) * d.reduce((s, row) => s + row[e]!, 0));
}
