import type { GpuRuntime } from '../gpu/runtime.ts';
import { checkBuffer } from '../gpu/tensor.ts';
import { dtypeCode, type FloatDType } from '../io/dtypes.ts';

const WG = 256;

/** Non-finite elements (±Inf, NaN) of one tensor: how many, and the first one's index (-1: none). */
export interface NonFinite {
  count: number;
  first: number;
}

/**
 * Counters for the non-finite check of many tensors (shaders/merge/nonfinite.wgsl): one (count,
 * first index) pair per slot on the GPU, so a merge can check every output tensor as it is made
 * and read the verdicts back together, or one slot at a time.
 */
export class NonFiniteCounters {
  private constructor(
    private readonly rt: GpuRuntime,
    readonly buffer: GPUBuffer,
    readonly slots: number,
  ) {}

  static create(rt: GpuRuntime, slots: number): NonFiniteCounters {
    const init = new Uint32Array(2 * Math.max(1, slots));
    for (let s = 1; s < init.length; s += 2) init[s] = 0xffffffff;
    return new NonFiniteCounters(rt, rt.upload('nonFinite.stats', init), slots);
  }

  /** Records the check of `n` elements of `buffer` (stored `dtype`) into `slot`; submitted at once. */
  check(buffer: GPUBuffer, dtype: FloatDType, n: number, slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) throw new RangeError(`nonFinite slot ${slot} outside [0, ${this.slots})`);
    checkBuffer(buffer, dtype, n, 'nonFinite');
    if (n === 0) return;
    const words = dtype === 'F32' ? n : Math.ceil(n / 2);
    const params = this.rt.uniform('nonFinite.params', new Uint32Array([n, slot]));
    try {
      this.rt.dispatch(this.rt.pipeline('merge/nonfinite', { WG: this.rt.workgroupSize(WG), DT: dtypeCode(dtype) }), [buffer, this.buffer, params], this.rt.grid1d(words, this.rt.workgroupSize(WG)));
    } finally {
      this.rt.release(params);
    }
  }

  /** The verdicts of slots [from, from + count). */
  async read(from = 0, count = this.slots - from): Promise<NonFinite[]> {
    if (count <= 0) return [];
    const raw = new Uint32Array(await this.rt.read(this.buffer, from * 8, count * 8));
    return Array.from({ length: count }, (_, i) => ({ count: raw[2 * i]!, first: raw[2 * i]! === 0 ? -1 : raw[2 * i + 1]! }));
  }

  destroy(): void {
    this.rt.release(this.buffer);
  }
}

/** The non-finite elements of one tensor on the GPU (its own counters, read back at once). */
export async function countNonFinite(rt: GpuRuntime, buffer: GPUBuffer, dtype: FloatDType, n: number): Promise<NonFinite> {
  const counters = NonFiniteCounters.create(rt, 1);
  try {
    counters.check(buffer, dtype, n, 0);
    return (await counters.read())[0]!;
  } finally {
    counters.destroy();
  }
}
