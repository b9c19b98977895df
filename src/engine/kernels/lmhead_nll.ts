import type { Bindable } from '../gpu/runtime.ts';
import { matmul, type WeightLayout } from './matmul.ts';
import { pow2WorkgroupSize, rowGrid, type KernelPass } from './pass.ts';
import type { WeightView } from '../gpu/tensor.ts';
import { f32Bits } from './weights.ts';

/**
 * LM head with fused log-softmax + NLL (shaders/model/lmhead_nll.wgsl after matmul.wgsl): for
 * each vocabulary chunk [v0, v0 + VC) the matmul writes (rows, VC) logits and the fold kernel
 * merges them into a running logsumexp per row, so (rows, V) logits never exist at once.
 */
export interface LmHeadNllArgs {
  rows: number; // B*T
  C: number;
  V: number;
  x: Bindable; // (rows, C) f32, final-normed hidden states
  w: WeightView; // (V, C) as nn.Linear (GPT-2's tied wte has the same layout)
  targets: Bindable; // (rows) i32; < 0 = no prediction at this row
  chunk: Bindable; // (rows, VC) f32 scratch
  VC: number; // chunk width, ≥ 1
  state: Bindable; // (rows, 3) f32 scratch
  nll: Bindable; // (rows) f32 out
  /** Final-logit soft cap c > 0: logits z -> c·tanh(z / c) (Gemma 2); 0 or absent: none. */
  softcap?: number;
}

export function lmHeadNll(pass: KernelPass, a: LmHeadNllArgs): void {
  // A row of VC columns keeps ≥ 8 per invocation: idle invocations still pay for every barrier of
  // the reductions (on SwiftShader the fold of a small vocabulary cost more than its matmul).
  const wg = pow2WorkgroupSize(pass.rt, Math.min(256, Math.max(32, Math.ceil(a.VC / 8))));
  for (let v0 = 0; v0 < a.V; v0 += a.VC) {
    const n = Math.min(a.VC, a.V - v0);
    matmul(pass, { M: a.rows, N: n, K: a.C, x: a.x, w: a.w, layout: 'linear', NW: a.V, n0: v0, y: a.chunk, ldy: a.VC });
    pass.run(
      'model/lmhead_nll',
      { WG: wg },
      [a.rows, n, a.VC, v0, v0 === 0 ? 1 : 0, v0 + n >= a.V ? 1 : 0, f32Bits(a.softcap ?? 0), 0],
      [a.chunk, a.targets, a.state, a.nll],
      rowGrid(pass.rt, a.rows),
    );
  }
}

/** Logits (V) of hidden row `row` of x (rows, C): the generation path (raw: a final soft cap is the caller's). */
export interface LmHeadLogitsArgs {
  row: number;
  C: number;
  V: number;
  x: Bindable;
  w: WeightView;
  layout?: WeightLayout;
  out: Bindable; // (V) f32
}

export function lmHeadLogits(pass: KernelPass, a: LmHeadLogitsArgs): void {
  matmul(pass, { M: 1, N: a.V, K: a.C, x: a.x, xoff: a.row * a.C, w: a.w, layout: a.layout ?? 'linear', y: a.out });
}
