import type { Bindable } from '../gpu/runtime.ts';
import type { KernelPass } from './pass.ts';
import { f32Bits } from './weights.ts';

/**
 * Twin of shaders/model/rope.wgsl: rotates, in place, heads [0, nheads) of width HS starting at
 * column `off` of each row (row stride `ld`) of `buf`; row r sits at position p0 + r % T.
 */
export interface RopeArgs {
  rows: number; // B*T
  T: number;
  p0: number;
  ld: number;
  off: number;
  nheads: number;
  HS: number; // even
  theta: number;
  buf: Bindable; // (B*T, ld) f32
}

export function rope(pass: KernelPass, a: RopeArgs): void {
  const wg = pass.rt.workgroupSize(256);
  pass.run(
    'model/rope',
    { WG: wg },
    [a.rows, a.T, a.p0, a.ld, a.off, a.nheads, a.HS, f32Bits(Math.log2(a.theta))],
    [a.buf],
    pass.rt.grid1d(a.rows * a.nheads * (a.HS / 2), wg),
  );
}
