import type { Bindable, GpuRuntime } from '../gpu/runtime.ts';

/**
 * A sequence of model kernels, recorded first and encoded later. `run` only notes the pipeline,
 * the u32 parameters and the bindings; `plan()` turns the recording into a DispatchPlan (one
 * uniform buffer for every dispatch's parameters, bind groups built once), which can be encoded
 * any number of times; `submit()` is plan, encode once, release.
 */
interface Recorded {
  pipeline: GPUComputePipeline;
  params: Uint32Array;
  bindings: readonly Bindable[];
  workgroups: readonly [number, number?, number?];
}

export class KernelPass {
  readonly rt: GpuRuntime;
  readonly label: string;
  private readonly recorded: Recorded[] = [];

  constructor(rt: GpuRuntime, label: string) {
    this.rt = rt;
    this.label = label;
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
    this.recorded.push({ pipeline: this.rt.pipeline(shader, constants, entryPoint), params: Uint32Array.from(params), bindings, workgroups });
  }

  /** Number of dispatches recorded so far. */
  get size(): number {
    return this.recorded.length;
  }

  /** The recording as a reusable plan (the caller destroys it). */
  plan(): DispatchPlan {
    return new DispatchPlan(this.rt, this.label, this.recorded);
  }

  /** Encodes the recording once in its own command buffer and submits it. */
  submit(): void {
    const plan = this.plan();
    plan.submit();
    plan.destroy();
  }
}

/**
 * Recorded dispatches ready to replay: every dispatch's parameters live in one uniform buffer
 * (at minUniformBufferOffsetAlignment offsets) and its bind group is built here, once; `encode`
 * records them all into a single compute pass (WebGPU orders and synchronises the dispatches of
 * one pass), or one pass each while the runtime profiles per kernel (`passPerDispatch`).
 * Valid as long as the buffers it binds are.
 */
export class DispatchPlan {
  readonly rt: GpuRuntime;
  readonly label: string;
  readonly dispatches: number;
  private readonly uniform: GPUBuffer | undefined;
  private readonly steps: { pipeline: GPUComputePipeline; group: GPUBindGroup; workgroups: readonly [number, number?, number?] }[];

  constructor(rt: GpuRuntime, label: string, recorded: readonly Recorded[]) {
    this.rt = rt;
    this.label = label;
    this.dispatches = recorded.length;
    const align = Math.max(16, rt.limits.minUniformBufferOffsetAlignment);
    // Each slot holds a 16-byte-rounded Params struct, as GpuRuntime.uniform pads it.
    const sizes = recorded.map((r) => Math.max(16, Math.ceil(r.params.byteLength / 16) * 16));
    const offsets: number[] = [];
    let total = 0;
    for (const size of sizes) {
      offsets.push(total);
      total += Math.ceil(size / align) * align;
    }
    if (recorded.length > 0) {
      const bytes = new Uint8Array(total);
      recorded.forEach((r, i) => bytes.set(new Uint8Array(r.params.buffer, r.params.byteOffset, r.params.byteLength), offsets[i]!));
      this.uniform = rt.createBuffer(`${label}.params`, total, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      rt.write(this.uniform, bytes);
    }
    this.steps = recorded.map((r, i) => ({
      pipeline: r.pipeline,
      group: rt.bindGroup(r.pipeline, [{ buffer: this.uniform!, offset: offsets[i]!, size: sizes[i]! }, ...r.bindings]),
      workgroups: r.workgroups,
    }));
  }

  /** Records every dispatch into `encoder`. */
  encode(encoder: GPUCommandEncoder): void {
    if (this.steps.length === 0) return;
    if (this.rt.passPerDispatch) {
      // One labelled pass per dispatch, so timestamp writes per pass measure one kernel each.
      for (const s of this.steps) {
        const pass = encoder.beginComputePass({ label: `${s.pipeline.label}.pass` });
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.group);
        pass.dispatchWorkgroups(s.workgroups[0], s.workgroups[1] ?? 1, s.workgroups[2] ?? 1);
        pass.end();
      }
      return;
    }
    const pass = encoder.beginComputePass({ label: `${this.label}.pass` });
    let current: GPUComputePipeline | undefined;
    for (const s of this.steps) {
      if (s.pipeline !== current) pass.setPipeline(s.pipeline);
      current = s.pipeline;
      pass.setBindGroup(0, s.group);
      pass.dispatchWorkgroups(s.workgroups[0], s.workgroups[1] ?? 1, s.workgroups[2] ?? 1);
    }
    pass.end();
  }

  /** Encodes the plan in a command buffer of its own and submits it. */
  submit(): void {
    const encoder = this.rt.device.createCommandEncoder({ label: this.label });
    this.encode(encoder);
    this.rt.device.queue.submit([encoder.finish()]);
  }

  /** Releases the parameter buffer (work already submitted still completes). */
  destroy(): void {
    this.rt.release(this.uniform);
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
