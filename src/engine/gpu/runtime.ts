import { GpuDeviceLostError, GpuOutOfMemoryError, GpuValidationError } from '../errors.ts';
import { specializedShader, type ShaderSources } from './shaders.ts';

/**
 * One GPU runtime for the page, a Worker and Node: owns the device, compiles shaders from
 * shaders/*.wgsl (by name), caches pipelines, uploads/reads back buffers, counts the bytes it
 * has allocated against a budget, and turns WebGPU's error scopes and device loss into typed
 * errors. Kernels (src/engine/kernels/*.ts) are thin functions over this. Every GPU buffer the
 * engine makes comes from createBuffer (readback staging included), so `memory.peak` is the most
 * the engine held at once: what `--json` reports as gpu_peak_bytes.
 */
export interface GpuRuntimeOptions {
  /** Soft cap on bytes of live buffers created through this runtime; exceeding it throws GpuOutOfMemoryError. */
  memoryBudget?: number;
  label?: string;
}

export type Bindable = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

export class GpuRuntime {
  readonly device: GPUDevice;
  readonly label: string;
  readonly memoryBudget: number;
  /** Resolves (never rejects) when the device is lost; `lostError` is set then. */
  readonly lost: Promise<GpuDeviceLostError>;
  lostError: GpuDeviceLostError | undefined;
  /**
   * When true, kernels/pass.ts DispatchPlans encode one labelled compute pass per dispatch instead
   * of one pass for all (the per-kernel timestamp profile of the benchmarks sets it).
   */
  passPerDispatch = false;

  private readonly sources: ShaderSources;
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly live = new Map<GPUBuffer, number>();
  private readonly constants = new Map<string, GPUBuffer>();
  private liveBytes = 0;
  private peak = 0;

  constructor(device: GPUDevice, sources: ShaderSources, options: GpuRuntimeOptions = {}) {
    this.device = device;
    this.sources = sources;
    this.label = options.label ?? 'GpuRuntime';
    this.memoryBudget = options.memoryBudget ?? Number.POSITIVE_INFINITY;
    this.lost = device.lost.then((info) => {
      this.lostError = new GpuDeviceLostError(
        `GPU device lost (${info.reason}): ${info.message || 'no message'}. Results computed so far are kept; reconnect to continue.`,
      );
      return this.lostError;
    });
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** Bytes currently allocated through this runtime, and the high-water mark. */
  get memory(): { live: number; peak: number; budget: number } {
    return { live: this.liveBytes, peak: this.peak, budget: this.memoryBudget };
  }

  resetPeak(): void {
    this.peak = this.liveBytes;
  }

  /** Largest workgroup size ≤ `want` the device allows (x dimension and invocations). */
  workgroupSize(want: number): number {
    return Math.max(1, Math.min(want, this.limits.maxComputeWorkgroupSizeX, this.limits.maxComputeInvocationsPerWorkgroup));
  }

  shaderModule(name: string): GPUShaderModule {
    let module = this.modules.get(name);
    if (!module) {
      module = this.device.createShaderModule({ label: `${this.label}.${name}`, code: specializedShader(this.sources, name) });
      this.modules.set(name, module);
    }
    return module;
  }

  /**
   * Pipeline for `shader` (name under shaders/, optionally '@CONST=value,...': specializedShader)
   * with override constants; cached per name and constants.
   */
  pipeline(shader: string, constants: Record<string, number> = {}, entryPoint = 'main'): GPUComputePipeline {
    let key = `${shader}:${entryPoint}`;
    for (const name in constants) key += `:${name}=${constants[name]}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.device.createComputePipeline({
        label: `${this.label}.${shader}.${entryPoint}`,
        layout: 'auto',
        compute: { module: this.shaderModule(shader), entryPoint, constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  createBuffer(label: string, size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    this.checkAlive();
    const padded = Math.max(4, Math.ceil(size / 4) * 4);
    if (this.liveBytes + padded > this.memoryBudget) {
      throw new GpuOutOfMemoryError(
        `${label}: allocating ${padded} bytes would exceed the GPU memory budget (${this.liveBytes} of ${this.memoryBudget} bytes in use)`,
      );
    }
    if (padded > this.limits.maxBufferSize) {
      throw new GpuOutOfMemoryError(`${label}: ${padded} bytes exceeds the device's maxBufferSize (${this.limits.maxBufferSize})`);
    }
    const buffer = this.device.createBuffer({ label: `${this.label}.${label}`, size: padded, usage });
    this.live.set(buffer, padded);
    this.liveBytes += padded;
    this.peak = Math.max(this.peak, this.liveBytes);
    return buffer;
  }

  /** A storage buffer (read/write, copy src/dst) of `size` bytes. */
  storage(label: string, size: number): GPUBuffer {
    return this.createBuffer(label, size, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
  }

  /** Uploads `data` (padded to 4 bytes) into a new storage buffer. */
  upload(label: string, data: ArrayBufferView, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST): GPUBuffer {
    const buffer = this.createBuffer(label, data.byteLength, usage | GPUBufferUsage.COPY_DST);
    this.write(buffer, data);
    return buffer;
  }

  /** writeBuffer that tolerates byte lengths not a multiple of 4 (pads a copy). */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 === 0) {
      this.device.queue.writeBuffer(buffer, offset, bytes as Uint8Array<ArrayBuffer>);
    } else {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      this.device.queue.writeBuffer(buffer, offset, padded);
    }
  }

  /** A uniform buffer holding `data` (16-byte aligned). */
  uniform(label: string, data: ArrayBufferView): GPUBuffer {
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    const buffer = this.createBuffer(label, size, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.write(buffer, data);
    return buffer;
  }

  /**
   * A uniform buffer of constant data made once per runtime and key (tables kernels index by
   * dynamic offset, e.g. merge/select's passes), counted like any other buffer, kept until the
   * runtime is destroyed (or the buffer released, after which it is made again).
   */
  constantUniform(key: string, make: () => ArrayBufferView): GPUBuffer {
    const have = this.constants.get(key);
    if (have && this.live.has(have)) return have;
    const buffer = this.uniform(`constant.${key}`, make());
    this.constants.set(key, buffer);
    return buffer;
  }

  release(...buffers: (GPUBuffer | undefined)[]): void {
    for (const buffer of buffers) {
      if (!buffer) continue;
      const size = this.live.get(buffer);
      if (size !== undefined) {
        this.live.delete(buffer);
        this.liveBytes -= size;
      }
      buffer.destroy();
    }
  }

  bindGroup(pipeline: GPUComputePipeline, bindings: readonly Bindable[], group = 0): GPUBindGroup {
    return this.device.createBindGroup({
      label: `${pipeline.label}.bind${group}`,
      layout: pipeline.getBindGroupLayout(group),
      entries: bindings.map((b, binding) => ({
        binding,
        // GPUBuffer has no `buffer` property, so this tells a plain buffer from a range.
        resource: 'buffer' in b ? { buffer: b.buffer, offset: b.offset ?? 0, size: b.size } : { buffer: b },
      })),
    });
  }

  /** Records one dispatch into `encoder` (or a fresh one that is submitted at once). */
  dispatch(
    pipeline: GPUComputePipeline,
    bindings: readonly Bindable[],
    workgroups: readonly [number, number?, number?],
    encoder?: GPUCommandEncoder,
  ): void {
    const own = encoder ?? this.device.createCommandEncoder({ label: `${pipeline.label}.encoder` });
    const pass = own.beginComputePass({ label: `${pipeline.label}.pass` });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.bindGroup(pipeline, bindings));
    pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
    pass.end();
    if (!encoder) this.device.queue.submit([own.finish()]);
  }

  /**
   * Workgroup grid for `n` invocations of `size`-wide workgroups, folded into y when x would
   * exceed maxComputeWorkgroupsPerDimension. Shaders compute the flat index as
   * `gid.x + gid.y * (num_workgroups.x * WG)` and guard `< n`.
   */
  grid1d(n: number, size: number): [number, number] {
    const groups = Math.max(1, Math.ceil(n / size));
    const maxX = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= maxX) return [groups, 1];
    const y = Math.ceil(groups / maxX);
    return [Math.ceil(groups / y), y];
  }

  /** Reads `size` bytes of `buffer` from `offset` back to the CPU (through a staging buffer counted like any other). */
  async read(buffer: GPUBuffer, offset = 0, size = buffer.size - offset): Promise<ArrayBuffer> {
    this.checkAlive();
    const aligned = Math.ceil(size / 4) * 4;
    const staging = this.createBuffer('readback', aligned, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      const encoder = this.device.createCommandEncoder({ label: `${this.label}.readback` });
      encoder.copyBufferToBuffer(buffer, offset, staging, 0, aligned);
      this.device.queue.submit([encoder.finish()]);
      await Promise.race([staging.mapAsync(GPUMapMode.READ), this.lost.then((e) => Promise.reject(e))]);
      return staging.getMappedRange().slice(0, size);
    } finally {
      this.release(staging);
    }
  }

  /**
   * Maps the first `size` bytes of a MAP_READ staging buffer that submitted copies have filled,
   * copies them out and unmaps it again, so the caller can reuse the buffer for the next readback.
   */
  async mapRead(staging: GPUBuffer, size: number): Promise<ArrayBuffer> {
    this.checkAlive();
    const aligned = Math.ceil(size / 4) * 4;
    await Promise.race([staging.mapAsync(GPUMapMode.READ, 0, aligned), this.lost.then((e) => Promise.reject(e))]);
    try {
      return staging.getMappedRange(0, aligned).slice(0, size);
    } finally {
      staging.unmap();
    }
  }

  async readF32(buffer: GPUBuffer, count?: number): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, 0, count === undefined ? undefined : count * 4));
  }

  /**
   * Runs `work` inside validation and out-of-memory error scopes and converts what they catch
   * (and a lost device) into typed errors labelled with `what`.
   */
  async scoped<T>(what: string, work: () => T | Promise<T>): Promise<T> {
    this.checkAlive();
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    let result: T | undefined;
    let failure: unknown;
    let failed = false;
    try {
      result = await work();
    } catch (error) {
      failure = error;
      failed = true;
    }
    const validation = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    if (oom) throw new GpuOutOfMemoryError(`${what}: GPU out of memory: ${oom.message}`, { cause: failure });
    if (validation) throw new GpuValidationError(`${what}: ${validation.message}`, { cause: failure });
    if (failed) throw failure;
    this.checkAlive();
    return result as T;
  }

  /** Waits until all submitted work has finished. */
  async flush(): Promise<void> {
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.lost.then((e) => Promise.reject(e))]);
  }

  private checkAlive(): void {
    if (this.lostError) throw this.lostError;
  }

  destroy(): void {
    for (const buffer of this.live.keys()) buffer.destroy();
    this.live.clear();
    this.liveBytes = 0;
    this.device.destroy();
  }
}
