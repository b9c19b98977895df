import type { Bindable } from '../gpu/runtime.ts';
import { pow2WorkgroupSize, rowGrid, type KernelPass } from './pass.ts';
import type { WeightView } from '../gpu/tensor.ts';
import { dtypeCode } from '../io/dtypes.ts';
import { f32Bits } from './weights.ts';

/** Twin of shaders/model/rmsnorm.wgsl: y (rows, C) = x * rsqrt(mean(x²) + eps) * w (or * (1 + w) with plusOne). */
export interface RmsNormArgs {
  rows: number;
  C: number;
  eps: number;
  x: Bindable; // (rows, C) f32
  w: WeightView; // (C)
  y: Bindable; // (rows, C) f32
  /** Gemma's RMSNorm: scale by (1 + w). */
  plusOne?: boolean;
}

export function rmsNorm(pass: KernelPass, a: RmsNormArgs): void {
  const wg = pow2WorkgroupSize(pass.rt, Math.min(256, Math.max(32, a.C)));
  pass.run(
    'model/rmsnorm',
    { WG: wg, DT_W: dtypeCode(a.w.dtype), PLUS_ONE: a.plusOne ? 1 : 0 },
    [a.rows, a.C, f32Bits(a.eps), 0],
    [a.x, a.w.buffer, a.y],
    rowGrid(pass.rt, a.rows),
  );
}
