import type { Bindable } from '../gpu/runtime.ts';
import type { KernelPass } from './pass.ts';
import { f32Bits } from './weights.ts';

/**
 * Twin of shaders/model/attention.wgsl: causal GQA attention with an online softmax, ATTENTION_SPLIT
 * invocations per query row; with `window` W > 0 the query at position i sees keys (i - W, i];
 * scores are scaled by `scale` and, with `softcap` c, capped to c·tanh(s / c).
 * Element (b, t, head, d) of q, k, v is read at b*bs + t*ld + off + head*HS + d, so they can be
 * column blocks of one fused (B, T, (NH + 2 NKV) HS) buffer or a (B, P, NKV HS) KV cache.
 * Queries sit at positions [p0, p0 + T); keys [0, p0 + T) must be present in k/v.
 */
export interface StridedHeads {
  buffer: Bindable;
  bs: number; // batch stride (elements)
  ld: number; // row (position) stride
  off: number; // column of head 0
}

export interface AttentionArgs {
  B: number;
  T: number;
  p0: number;
  NH: number;
  NKV: number;
  HS: number;
  /** Sliding window W (keys i - W < j <= i); 0 or absent: plain causal. */
  window?: number;
  /** Score scale; default 1/√HS. */
  scale?: number;
  /** Soft cap c > 0: scores s -> c·tanh(s / c) before the softmax (Gemma 2); 0 or absent: none. */
  softcap?: number;
  q: StridedHeads;
  k: StridedHeads;
  v: StridedHeads;
  out: Bindable; // (B, T, NH*HS) f32
}

/** Floats per K (and V) tile in workgroup memory; matches TILE in attention.wgsl. */
export const ATTENTION_TILE = 2048;
/** Largest head size the shader's per-invocation accumulators hold. */
export const ATTENTION_HS_MAX = 256;

/** Invocations that share one query row (each takes every S-th key; their states are merged). */
export const ATTENTION_SPLIT = 4;

export function attention(pass: KernelPass, a: AttentionArgs): void {
  if (a.HS > ATTENTION_HS_MAX) throw new RangeError(`attention: head size ${a.HS} exceeds ${ATTENTION_HS_MAX}`);
  if (a.NH % a.NKV !== 0) throw new RangeError(`attention: NH ${a.NH} is not a multiple of NKV ${a.NKV}`);
  const wg = pass.rt.workgroupSize(64);
  const split = wg % ATTENTION_SPLIT === 0 ? ATTENTION_SPLIT : 1;
  const kt = Math.floor(ATTENTION_TILE / a.HS);
  // The per-invocation q and accumulator arrays sized to the head: 256 floats each spill out of
  // registers on a real GPU where 64 fit.
  const hsMax = a.HS <= 64 ? 64 : a.HS <= 128 ? 128 : ATTENTION_HS_MAX;
  pass.run(
    `model/attention@HS_MAX=${hsMax}u`,
    { WG: wg, S: split },
    [
      a.T, a.p0, a.NH, a.NKV,
      a.HS, kt, f32Bits(a.scale ?? 1 / Math.sqrt(a.HS)), a.window ?? 0,
      a.q.bs, a.q.ld, a.q.off, f32Bits(a.softcap ?? 0),
      a.k.bs, a.k.ld, a.k.off, 0,
      a.v.bs, a.v.ld, a.v.off, 0,
    ],
    [a.q.buffer, a.k.buffer, a.v.buffer, a.out],
    [Math.ceil(a.T / (wg / split)), a.NH, a.B],
  );
}
