import type { Bindable } from '../gpu/runtime.ts';
import type { KernelPass } from './pass.ts';

/**
 * Twin of shaders/model/rope.wgsl: rotates, in place, heads [0, nheads) of width HS starting at
 * column `off` of each row (row stride `ld`) of `buf`; row r sits at position p0 + r % T, which
 * must be < the positions `table` was built for.
 */
export interface RopeArgs {
  rows: number; // B*T
  T: number;
  p0: number;
  ld: number;
  off: number;
  nheads: number;
  HS: number; // even
  table: Bindable; // ropeTable(P, frequencies) on the GPU
  buf: Bindable; // (B*T, ld) f32
}

/**
 * (P, HS/2, 2) cos/sin table as Hugging Face computes it from the inverse frequencies `inv`
 * (HS/2, model/rope.ts): inv_freq in f32, angle = pos * inv_freq in f32, cos/sin of that angle
 * (accurately) times `scale` (yarn's attention factor), rounded to f32.
 */
export function ropeTable(P: number, freqs: { inv: ArrayLike<number>; scale: number }): Float32Array {
  const half = freqs.inv.length;
  const out = new Float32Array(P * half * 2);
  for (let j = 0; j < half; j++) {
    const inv = Math.fround(freqs.inv[j]!);
    for (let pos = 0; pos < P; pos++) {
      const ang = Math.fround(pos * inv);
      out[(pos * half + j) * 2] = Math.cos(ang) * freqs.scale;
      out[(pos * half + j) * 2 + 1] = Math.sin(ang) * freqs.scale;
    }
  }
  return out;
}

export function rope(pass: KernelPass, a: RopeArgs): void {
  const wg = pass.rt.workgroupSize(256);
  pass.run(
    'model/rope',
    { WG: wg },
    [a.rows, a.T, a.p0, a.ld, a.off, a.nheads, a.HS, 0],
    [a.buf, a.table],
    pass.rt.grid1d(a.rows * a.nheads * (a.HS / 2), wg),
  );
}
