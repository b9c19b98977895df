import type { Bindable, GpuRuntime } from '../gpu/runtime.ts';

/**
 * One command encoder that a sequence of model kernels records into; owns the small uniform
 * buffers those dispatches need and releases them once the work is submitted (WebGPU keeps
 * destroyed buffers alive for commands already submitted).
 */
export class KernelPass {
  readonly rt: GpuRuntime;
  readonly encoder: GPUCommandEncoder;
  private readonly temps: GPUBuffer[] = [];

  constructor(rt: GpuRuntime, label: string) {
    this.rt = rt;
    this.encoder = rt.device.createCommandEncoder({ label });
  }

  /** Dispatches `shader` with a u32 uniform (binding 0) followed by `bindings`. */
  run(
    shader: string,
    constants: Record<string, number>,
    params: readonly number[],
    bindings: readonly Bindable[],
    workgroups: readonly [number, number?, number?],
    entryPoint = 'main',
  ): void {
    const uniform = this.rt.uniform(`${shader}.params`, Uint32Array.from(params));
    this.temps.push(uniform);
    this.rt.dispatch(this.rt.pipeline(shader, constants, entryPoint), [uniform, ...bindings], workgroups, this.encoder);
  }

  submit(): void {
    this.rt.device.queue.submit([this.encoder.finish()]);
    this.rt.release(...this.temps);
    this.temps.length = 0;
  }
}

/** Largest power of two ≤ min(want, device limit): the row kernels reduce by halving. */
export function pow2WorkgroupSize(rt: GpuRuntime, want: number): number {
  const max = rt.workgroupSize(want);
  return 2 ** Math.floor(Math.log2(max));
}

/** Grid for one workgroup per row, folded into y beyond maxComputeWorkgroupsPerDimension. */
export function rowGrid(rt: GpuRuntime, rows: number): [number, number] {
  return rt.grid1d(rows, 1);
}
