import type { Bindable, GpuRuntime } from '../gpu/runtime.ts';
import { matmul, matmulTileSide, type WeightLayout } from './matmul.ts';
import { dtypeCode } from '../io/dtypes.ts';
import { pow2WorkgroupSize, rowGrid, type KernelPass } from './pass.ts';
import type { WeightView } from '../gpu/tensor.ts';
import { f32Bits } from './weights.ts';

/**
 * LM head with fused log-softmax + NLL: for each vocabulary chunk [v0, v0 + VC) the tiled matmul
 * of shaders/model/lmhead_lse.wgsl reduces its (BM, BM) logit tiles in the epilogue to per-row
 * (max, Σ exp) partials and picks out the target logits, and shaders/model/lmhead_nll.wgsl folds
 * the chunk's partials into a running logsumexp per row: no logits buffer is written.
 */
export interface LmHeadNllArgs {
  rows: number; // B*T
  C: number;
  V: number;
  x: Bindable; // (rows, C) f32, final-normed hidden states
  w: WeightView; // (V, C) as nn.Linear (GPT-2's tied wte has the same layout)
  targets: Bindable; // (rows) i32; < 0 = no prediction at this row
  chunk: Bindable; // (rows, lmHeadPartials(VC)) f32 scratch: a chunk's tile partials
  VC: number; // chunk width, ≥ 1
  state: Bindable; // (rows, 3) f32 scratch
  nll: Bindable; // (rows) f32 out (holds the target logits meanwhile)
  /** Final-logit soft cap c > 0: logits z -> c·tanh(z / c) (Gemma 2); 0 or absent: none. */
  softcap?: number;
}

/** Vocabulary columns per tile of shaders/model/lmhead_lse.wgsl (the matmul's 4·TS). */
export function lmHeadTileColumns(rt: GpuRuntime): number {
  return 4 * matmulTileSide(rt);
}

/** Floats per row of `chunk` for chunks of VC columns: (max, sum) per column tile. */
export function lmHeadPartials(rt: GpuRuntime, VC: number): number {
  return 2 * Math.ceil(VC / lmHeadTileColumns(rt));
}

export function lmHeadNll(pass: KernelPass, a: LmHeadNllArgs): void {
  const tile = lmHeadTileColumns(pass.rt);
  const ld = Math.ceil(a.VC / tile);
  const ts = tile / 4;
  const maxDim = pass.rt.limits.maxComputeWorkgroupsPerDimension;
  const gy = Math.ceil(a.rows / tile);
  if (Math.ceil(a.VC / tile) > maxDim || gy > maxDim) throw new RangeError(`lmHeadNll: (${a.rows}, ${a.VC}) needs more than ${maxDim} workgroups per dimension`);
  // One fold invocation per partial keeps ≥ 8 each: idle invocations still pay for every barrier
  // of the reductions.
  const wg = pow2WorkgroupSize(pass.rt, Math.min(256, Math.max(32, Math.ceil(ld / 8))));
  for (let v0 = 0; v0 < a.V; v0 += a.VC) {
    const n = Math.min(a.VC, a.V - v0);
    const nt = Math.ceil(n / tile);
    pass.run(
      'model/lmhead_lse',
      { TS: ts, DT_W: dtypeCode(a.w.dtype), TRANS_W: 0 },
      [a.rows, n, a.C, a.C, 0, ld, 0, v0, a.V, f32Bits(a.softcap ?? 0), 0, 0],
      [a.x, a.w.buffer, a.targets, a.chunk, a.nll],
      [nt, gy],
    );
    pass.run(
      'model/lmhead_nll',
      { WG: wg },
      [a.rows, nt, ld, v0, v0 === 0 ? 1 : 0, v0 + n >= a.V ? 1 : 0, 0, 0],
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
