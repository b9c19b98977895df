import type { Bindable } from '../gpu/runtime.ts';
import { pow2WorkgroupSize, rowGrid, type KernelPass } from './pass.ts';
import type { WeightView } from '../gpu/tensor.ts';
import { dtypeCode } from '../io/dtypes.ts';
import { f32Bits } from './weights.ts';

/** Twin of shaders/model/layernorm.wgsl: y (rows, C) = LayerNorm(x) * w + b. */
export interface LayerNormArgs {
  rows: number;
  C: number;
  eps: number;
  x: Bindable; // (rows, C) f32
  w: WeightView; // (C)
  b: WeightView; // (C)
  y: Bindable; // (rows, C) f32
}

export function layerNorm(pass: KernelPass, a: LayerNormArgs): void {
  const wg = pow2WorkgroupSize(pass.rt, Math.min(256, Math.max(32, a.C)));
  pass.run(
    'model/layernorm',
    { WG: wg, DT_W: dtypeCode(a.w.dtype), DT_B: dtypeCode(a.b.dtype) },
    [a.rows, a.C, f32Bits(a.eps), 0],
    [a.x, a.w.buffer, a.b.buffer, a.y],
    rowGrid(pass.rt, a.rows),
  );
}
