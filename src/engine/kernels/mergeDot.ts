import type { GpuRuntime } from '../gpu/runtime.ts';
import { checkBuffer } from '../gpu/tensor.ts';

const WG = 256;
const PER = 4; // elements per invocation, as in shaders/merge/dot.wgsl

export interface DotNorms {
  /** a·b, |a|², |b|² */
  dot: number;
  aa: number;
  bb: number;
}

/**
 * (a·b, a·a, b·b) of two (n) f32 tensors, starting at element offsets (rows of a packed (N, n)
 * buffer), (shaders/merge/dot.wgsl): per-workgroup f32 partials
 * over chunks of 1024 elements, added on the CPU in float64. Needs WG a power of two (256 is
 * within every device's limits).
 */
export async function dotNorms(rt: GpuRuntime, a: GPUBuffer, b: GPUBuffer, n: number, offsets: { a?: number; b?: number } = {}): Promise<DotNorms> {
  const aOff = offsets.a ?? 0;
  const bOff = offsets.b ?? 0;
  checkBuffer(a, 'F32', aOff + n, 'dotNorms a');
  checkBuffer(b, 'F32', bOff + n, 'dotNorms b');
  if (n === 0) return { dot: 0, aa: 0, bb: 0 };
  const wg = rt.workgroupSize(WG);
  if ((wg & (wg - 1)) !== 0) throw new Error(`dotNorms needs a power-of-two workgroup size, device allows ${wg}`);
  const groups = Math.ceil(n / (wg * PER));
  const partial = rt.storage('mergeDot.partial', groups * 3 * 4);
  const params = rt.uniform('mergeDot.params', new Uint32Array([n, aOff, bOff]));
  rt.dispatch(rt.pipeline('merge/dot', { WG: wg }), [a, b, partial, params], rt.grid1d(groups * wg, wg));
  rt.release(params);
  try {
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
    rt.release(partial);
  }
}
