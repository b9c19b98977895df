import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import type { GpuView } from '../gpu/tensor.ts';
import { dtypeCode } from '../io/dtypes.ts';
import { baseBinding, rowsBindings, rowsConstants, type TensorRows } from './mergeRows.ts';

/** Rank 0 asks for "above everything": both key words 0xFFFFFFFF. */
export const ABOVE_ALL = 0xffffffff;

const WG = 64; // power of two: the histogram reduces through workgroup memory as a tree
const PER = 64; // elements per invocation, as in shaders/merge/select.wgsl
const SHIFTS = [28, 24, 20, 16, 12, 8, 4, 0] as const;
/** The 16 passes, magnitude word then index word: [phase, shift]. */
const PASSES = [...SHIFTS.map((s) => [0, s] as const), ...SHIFTS.map((s) => [1, s] as const)];
const STRIDE = 256; // bytes between Pass records (minUniformBufferOffsetAlignment is at most 256)

/** The Pass records (4 KiB), made once per runtime. */
function passBuffer(rt: GpuRuntime): GPUBuffer {
  return rt.constantUniform('mergeSelect.passes', () => {
    const data = new Uint32Array((PASSES.length * STRIDE) / 4);
    PASSES.forEach(([phase, shift], p) => data.set([shift, phase], (p * STRIDE) / 4));
    return data;
  });
}

/** A selected key: |Δ| as f32 bits, then the index word ~i (lower index = larger key). */
export interface SelectedKey {
  hi: number;
  lo: number;
}

/** A query bounds the kept keys from below (keys ≥ it) or above (keys ≤ it). */
export type KeyBound = 'lower' | 'upper';

/**
 * The element with the k-th largest key per row of a tensor's Δ rows, across all its chunks, by
 * GPU radix select (shaders/merge/select.wgsl). The key of element i is (|Δ_i| f32 bits, ~i):
 * magnitude first, lower index first among equals, so keeping the keys ≥ the k-th keeps exactly
 * k elements. K = bounds.length (1 or 2) queries per row, `ranks` (N, K), 1-based, 0 for
 * ABOVE_ALL. Returns the state buffer (N, K, 4) u32 whose words 4·(r·K + q) and +1 are the
 * answer's key — or, where the magnitude settles which elements the bound keeps, that magnitude
 * with index word 0 (lower) or 0xFFFFFFFF (upper) — which merge/sparse reads in place.
 */
export function selectKeys(rt: GpuRuntime, a: { base?: GpuView; rows: TensorRows; ranks: ArrayLike<number>; bounds: readonly KeyBound[] }): GPUBuffer {
  const { rows, ranks, bounds } = a;
  const K = bounds.length;
  if (K < 1 || K > 2) throw new InputError(`selectKeys: ${K} queries per row (1 or 2)`);
  const N = rows.codes.length;
  const n = rows.n;
  if (ranks.length !== N * K) throw new InputError(`selectKeys: ${ranks.length} ranks for ${N} rows × ${K} queries`);
  if (N > rt.limits.maxComputeWorkgroupsPerDimension) throw new InputError(`selectKeys: ${N} rows exceed the dispatch limit`);
  const init = new Uint32Array(N * K * 4);
  for (let j = 0; j < N * K; j++) {
    const k = ranks[j]!;
    if (!Number.isInteger(k) || k < 0 || k > n) throw new InputError(`selectKeys: rank ${k} outside 0..${n}`);
    const upper = bounds[j % K] === 'upper' ? 2 : 0;
    init.set(k === 0 ? [ABOVE_ALL, ABOVE_ALL, 0, 1 | upper] : [0, 0, k, upper], 4 * j);
  }
  const state = rt.upload('mergeSelect.state', init);
  if (n === 0) return state;
  const wg = rt.workgroupSize(WG);
  const chunks = rows.chunks.filter((c) => c.rows.n > 0);
  const starts: number[] = [];
  let groups = 0;
  for (const c of chunks) {
    starts.push(groups);
    groups += Math.ceil(c.rows.n / (wg * PER));
  }
  const temps: GPUBuffer[] = [];
  try {
    const passes = passBuffer(rt);
    const partial = rt.storage('mergeSelect.partial', N * groups * K * 16 * 4);
    temps.push(partial);
    const params = chunks.map((c, k) => rt.uniform('mergeSelect.params', new Uint32Array([c.rows.n, N, K, groups, c.offset, starts[k]!])));
    temps.push(...params);
    const encoder = rt.device.createCommandEncoder({ label: 'mergeSelect.encoder' });
    const pick = rt.pipeline('merge/select', { WG: wg }, 'pick');
    const bases = chunks.map((c) => baseBinding(a.base, c, 'selectKeys base'));
    PASSES.forEach((_, p) => {
      const pass = { buffer: passes, offset: p * STRIDE, size: 8 };
      chunks.forEach((c, k) => {
        const histogram = rt.pipeline('merge/select', { WG: wg, BASE_DT: dtypeCode(bases[k]!.dtype), ...rowsConstants(c.rows, false) }, 'histogram');
        const [gx, gy] = rt.grid1d(Math.ceil(c.rows.n / (wg * PER)) * wg, wg);
        rt.dispatch(histogram, [state, partial, pass, params[k]!, bases[k]!.binding, ...rowsBindings(c.rows)], [gx, gy, N], encoder);
      });
      rt.dispatch(pick, [state, partial, pass, params[0]!], rt.grid1d(N * K, wg), encoder);
    });
    rt.device.queue.submit([encoder.finish()]);
    return state;
  } catch (error) {
    rt.release(state);
    throw error;
  } finally {
    rt.release(...temps);
  }
}

/** Reads the (N, K) answers out of a selectKeys state buffer (tests, diagnostics). */
export async function readSelected(rt: GpuRuntime, state: GPUBuffer, N: number, K: number): Promise<SelectedKey[]> {
  const s = new Uint32Array(await rt.read(state, 0, N * K * 16));
  return Array.from({ length: N * K }, (_, j) => ({ hi: s[4 * j]!, lo: s[4 * j + 1]! }));
}
