import type { Bindable } from '../gpu/runtime.ts';
import type { KernelPass } from './pass.ts';
import { f32Bits } from './weights.ts';

/**
 * Twin of shaders/model/attention.wgsl: causal GQA attention tiled as FlashAttention-2 (a
 * workgroup per block of (query, head) rows sharing one KV head, K/V tiles in workgroup memory,
 * an online softmax rescaled once per tile); with `window` W > 0 the query at position i sees keys
 * (i - W, i]; scores are scaled by `scale` and, with `softcap` c, capped to c·tanh(s / c).
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

/** Largest head size: the per-invocation arrays hold HS / ATTENTION_SPLIT floats each. */
export const ATTENTION_HS_MAX = 256;
/** Invocations per (query, head) row and rows per workgroup: S and R in attention.wgsl. */
export const ATTENTION_SPLIT = 4;
export const ATTENTION_ROWS = 16;

/**
 * Keys per tile: the largest power of two ≤ 32 whose K and V tiles (BK, HSP) and partial scores
 * (BK, R·S) fit the device's workgroup memory.
 */
export function attentionTile(HS: number, workgroupBytes: number): number {
  const hsp = Math.ceil(HS / ATTENTION_SPLIT) * ATTENTION_SPLIT;
  let bk = 32;
  while (bk > 1 && bk * (2 * hsp + ATTENTION_ROWS * ATTENTION_SPLIT) * 4 > workgroupBytes) bk /= 2;
  return bk;
}

export function attention(pass: KernelPass, a: AttentionArgs): void {
  if (a.HS > ATTENTION_HS_MAX) throw new RangeError(`attention: head size ${a.HS} exceeds ${ATTENTION_HS_MAX}`);
  if (a.NH % a.NKV !== 0) throw new RangeError(`attention: NH ${a.NH} is not a multiple of NKV ${a.NKV}`);
  const G = a.NH / a.NKV;
  const bk = attentionTile(a.HS, pass.rt.limits.maxComputeWorkgroupStorageSize);
  pass.run(
    `model/attention@HS=${a.HS}u,BK=${bk}u`,
    {},
    [
      a.T, a.p0, a.NH, a.NKV,
      G, 0, f32Bits(a.scale ?? 1 / Math.sqrt(a.HS)), a.window ?? 0,
      a.q.bs, a.q.ld, a.q.off, f32Bits(a.softcap ?? 0),
      a.k.bs, a.k.ld, a.k.off, 0,
      a.v.bs, a.v.ld, a.v.off, 0,
    ],
    [a.q.buffer, a.k.buffer, a.v.buffer, a.out],
    [Math.ceil((a.T * G) / ATTENTION_ROWS), a.NKV, a.B],
  );
}
