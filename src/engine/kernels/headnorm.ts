import type { Bindable } from '../gpu/runtime.ts';
import { pow2WorkgroupSize, rowGrid, type KernelPass } from './pass.ts';
import type { WeightView } from '../gpu/tensor.ts';
import { dtypeCode } from '../io/dtypes.ts';
import { f32Bits } from './weights.ts';

/**
 * Twin of shaders/model/headnorm.wgsl: RMSNorm in place over the segments of width W at column
 * `off + g*W` (g < G) of each row (row stride `ld`) of `buf`: per head (Qwen3: W = HS, G heads)
 * or over a whole projection (OLMo 2: G = 1).
 */
export interface HeadNormArgs {
  rows: number; // B*T
  G: number;
  W: number;
  ld: number;
  off: number;
  eps: number;
  w: WeightView; // (W)
  buf: Bindable; // (rows, ld) f32
}

export function headNorm(pass: KernelPass, a: HeadNormArgs): void {
  const wg = pow2WorkgroupSize(pass.rt, Math.min(256, Math.max(32, a.W)));
  const segments = a.rows * a.G;
  pass.run(
    'model/headnorm',
    { WG: wg, DT_W: dtypeCode(a.w.dtype) },
    [segments, a.W, a.G, a.ld, a.off, f32Bits(a.eps), 0, 0],
    [a.buf, a.w.buffer],
    rowGrid(pass.rt, segments),
  );
}
