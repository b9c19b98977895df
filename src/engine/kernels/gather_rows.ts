import type { Bindable } from '../gpu/runtime.ts';
import type { KernelPass } from './pass.ts';

/** Twin of shaders/model/gather_rows.wgsl: y (R, C) = rows idx of x (rows, C). */
export interface GatherRowsArgs {
  R: number;
  C: number;
  idx: Bindable; // (R) u32, each < the rows of x (checked by the caller)
  x: Bindable; // (rows, C) f32
  y: Bindable; // (R, C) f32, not x
}

export function gatherRows(pass: KernelPass, a: GatherRowsArgs): void {
  if (a.R === 0) return;
  const wg = pass.rt.workgroupSize(256);
  pass.run('model/gather_rows', { WG: wg }, [a.R, a.C, 0, 0], [a.idx, a.x, a.y], pass.rt.grid1d(a.R * a.C, wg));
}
