import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { viewBinding, type GpuView } from '../gpu/tensor.ts';
import { dtypeCode } from '../io/dtypes.ts';
import { rowCodeNumber, type GpuRows } from './mergeRows.ts';

const WG = 64;

/**
 * Writes row r of compressed Δ rows (shaders/merge/compress.wgsl): Δ = x − base in f32 (the
 * subtraction every merge kernel makes), stored as int8 blocks of 64 with an f32 scale (Q8) or
 * rounded to a float dtype. `x` and `base` are views of the chunk's elements.
 */
export function compressRow(rt: GpuRuntime, a: { x: GpuView; base: GpuView; rows: GpuRows; r: number }): void {
  const { rows, r } = a;
  const code = rows.codes[r];
  if (rows.holds !== 'deltas' || code === undefined) throw new InputError(`compressRow: row ${r} of rows holding ${rows.holds}`);
  const n = rows.n;
  if (n === 0) return;
  const x = viewBinding(a.x, n, 'compressRow x');
  const base = viewBinding(a.base, n, 'compressRow base');
  const params = rt.uniform('mergeCompress.params', new Uint32Array([n, rows.layout.offsets[r]!, rows.layout.scales[r]!, 0]));
  const wg = rt.workgroupSize(WG);
  const invocations = code === 'Q8' ? Math.ceil(n / 64) : code === 'F32' ? n : Math.ceil(n / 2);
  const pipeline = rt.pipeline('merge/compress', { WG: wg, X_DT: dtypeCode(a.x.dtype), BASE_DT: dtypeCode(a.base.dtype), OUT_CODE: rowCodeNumber(code) });
  rt.dispatch(pipeline, [x, base, rows.buffer, params], rt.grid1d(invocations, wg));
  rt.release(params);
}
