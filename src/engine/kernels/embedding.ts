import type { Bindable } from '../gpu/runtime.ts';
import type { KernelPass } from './pass.ts';
import type { WeightView } from '../gpu/tensor.ts';
import { dtypeCode } from '../io/dtypes.ts';

/** Twin of shaders/model/embedding.wgsl: out (B*T, C) = scale · wte[ids] (+ wpe[p0 + t] when `wpe` given). */
export interface EmbeddingArgs {
  rows: number; // B*T
  T: number;
  C: number;
  p0: number; // position of the first row of each window
  ids: Bindable; // (B*T) u32, each < V (checked by the caller)
  wte: WeightView; // (V, C)
  wpe?: WeightView; // (P, C), GPT-2 learned positions
  /** Multiplies the token rows (Gemma: √C); default 1. */
  scale?: number;
  out: Bindable; // (B*T, C) f32
}

export function embedding(pass: KernelPass, a: EmbeddingArgs): void {
  const wg = pass.rt.workgroupSize(256);
  const wpe = a.wpe ?? a.wte;
  pass.run(
    'model/embedding',
    { WG: wg, DT_E: dtypeCode(a.wte.dtype), DT_P: dtypeCode(wpe.dtype), LEARNED: a.wpe ? 1 : 0, SCALE: a.scale ?? 1 },
    [a.rows, a.C, a.T, a.p0],
    [a.ids, a.wte.buffer, wpe.buffer, a.out],
    pass.rt.grid1d(a.rows * a.C, wg),
  );
}
