import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { checkBuffer } from '../gpu/tensor.ts';

/** Rank 0 asks for "above everything": the result is 0xFFFFFFFF. */
export const ABOVE_ALL = 0xffffffff;

const WG = 64; // power of two: the histogram reduces through workgroup memory as a tree
const PER = 64; // elements per invocation, as in shaders/merge/select.wgsl
const SHIFTS = [28, 24, 20, 16, 12, 8, 4, 0] as const;

/**
 * k-th largest |x| per row of rows (N, n) f32 by GPU radix select (4-bit digits) on the float bits
 * (shaders/merge/select.wgsl): K (1 or 2) queries per row, `ranks` (N, K), 1-based, 0 for
 * ABOVE_ALL. Returns the state buffer (N, K, 2) u32 whose word 2·(r·K + q) is the bit pattern
 * of the answer (|x| as f32 bits); merge/sparse reads it in place, nothing comes back to the CPU.
 */
export function selectAbsRanks(rt: GpuRuntime, rows: GPUBuffer, N: number, n: number, ranks: ArrayLike<number>, K: 1 | 2): GPUBuffer {
  if (ranks.length !== N * K) throw new InputError(`selectAbsRanks: ${ranks.length} ranks for ${N} rows × ${K} queries`);
  checkBuffer(rows, 'F32', N * n, 'selectAbsRanks rows');
  if (N > rt.limits.maxComputeWorkgroupsPerDimension) throw new InputError(`selectAbsRanks: ${N} rows exceed the dispatch limit`);
  const init = new Uint32Array(N * K * 2);
  for (let j = 0; j < N * K; j++) {
    const k = ranks[j]!;
    if (!Number.isInteger(k) || k < 0 || k > n) throw new InputError(`selectAbsRanks: rank ${k} outside 0..${n}`);
    init[2 * j] = k === 0 ? ABOVE_ALL : 0;
    init[2 * j + 1] = k;
  }
  const state = rt.upload('mergeSelect.state', init);
  if (n === 0) return state;
  const wg = rt.workgroupSize(WG);
  const groups = Math.ceil(n / (wg * PER));
  const partial = rt.storage('mergeSelect.partial', N * groups * K * 16 * 4);
  // One Params per pass at 256-byte offsets (minUniformBufferOffsetAlignment is at most 256).
  const stride = 256;
  const passes = new Uint32Array((SHIFTS.length * stride) / 4);
  SHIFTS.forEach((shift, p) => passes.set([n, N, K, groups, shift], (p * stride) / 4));
  const params = rt.uniform('mergeSelect.params', passes);
  const [gx, gy] = rt.grid1d(groups * wg, wg);
  const encoder = rt.device.createCommandEncoder({ label: 'mergeSelect.encoder' });
  const histogram = rt.pipeline('merge/select', { WG: wg }, 'histogram');
  const pick = rt.pipeline('merge/select', { WG: wg }, 'pick');
  SHIFTS.forEach((_, p) => {
    const pass = { buffer: params, offset: p * stride, size: 32 };
    rt.dispatch(histogram, [state, partial, pass, rows], [gx, gy, N], encoder);
    rt.dispatch(pick, [state, partial, pass], rt.grid1d(N * K, wg), encoder);
  });
  rt.device.queue.submit([encoder.finish()]);
  rt.release(partial, params);
  return state;
}

/** Reads the (N, K) answers out of a selectAbsRanks state buffer (tests, diagnostics). */
export async function readSelected(rt: GpuRuntime, state: GPUBuffer, N: number, K: number): Promise<Uint32Array> {
  const s = new Uint32Array(await rt.read(state, 0, N * K * 8));
  return Uint32Array.from({ length: N * K }, (_, j) => s[2 * j]!);
}
