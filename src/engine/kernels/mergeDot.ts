import type { GpuRuntime } from '../gpu/runtime.ts';
import type { GpuView } from '../gpu/tensor.ts';
import { dtypeCode } from '../io/dtypes.ts';
import { baseBinding, rowsBindings, rowsConstants, type TensorRows } from './mergeRows.ts';

const WG = 256;
const PER = 4; // elements per invocation, as in shaders/merge/dot.wgsl
const BASE_ROW = 0xffffffff;

export interface DotNorms {
  /** a·b, |a|², |b|² */
  dot: number;
  aa: number;
  bb: number;
}

/** One operand of dotNorms: a row of the tensor's rows, or the base itself. */
export type DotOperand = number | 'base';

/**
 * (a·b, a·a, b·b) over a whole tensor, every chunk (shaders/merge/dot.wgsl): a and b are rows
 * (Δ_i, or θ_i with `raw`) or the base; per-workgroup f32 partials over parts of 1024 elements,
 * added on the CPU in float64. Needs WG a power of two (256 is within every device's limits).
 */
export async function dotNorms(rt: GpuRuntime, a: { base?: GpuView; rows: TensorRows; raw?: boolean; a: DotOperand; b: DotOperand }): Promise<DotNorms> {
  const wg = rt.workgroupSize(WG);
  if ((wg & (wg - 1)) !== 0) throw new Error(`dotNorms needs a power-of-two workgroup size, device allows ${wg}`);
  const per = wg * PER;
  const chunks = a.rows.chunks.filter((c) => c.rows.n > 0);
  let groups = 0;
  const starts = chunks.map((c) => {
    const s = groups;
    groups += Math.ceil(c.rows.n / per);
    return s;
  });
  if (groups === 0) return { dot: 0, aa: 0, bb: 0 };
  const which = (o: DotOperand): number => (o === 'base' ? BASE_ROW : o);
  const partial = rt.storage('mergeDot.partial', groups * 3 * 4);
  const temps: GPUBuffer[] = [];
  try {
    const encoder = rt.device.createCommandEncoder({ label: 'mergeDot.encoder' });
    chunks.forEach((c, k) => {
      const base = baseBinding(a.base, c, 'dotNorms base');
      const params = rt.uniform('mergeDot.params', new Uint32Array([c.rows.n, which(a.a), which(a.b), starts[k]!]));
      temps.push(params);
      const pipeline = rt.pipeline('merge/dot', { WG: wg, BASE_DT: dtypeCode(base.dtype), ...rowsConstants(c.rows, a.raw ?? false) });
      rt.dispatch(pipeline, [base.binding, ...rowsBindings(c.rows), partial, params], rt.grid1d(Math.ceil(c.rows.n / per) * wg, wg), encoder);
    });
    rt.device.queue.submit([encoder.finish()]);
    const p = await rt.readF32(partial, groups * 3);
    let dot = 0;
    let aa = 0;
    let bb = 0;
    for (let g = 0; g < groups; g++) {
      dot += p[3 * g]!;
      aa += p[3 * g + 1]!;
      bb += p[3 * g + 2]!;
    }
    return { dot, aa, bb };
  } finally {
    rt.release(partial, ...temps);
  }
}
