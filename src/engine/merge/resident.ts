import { GpuOutOfMemoryError, InputError, throwIfAborted } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { elementCount, type GpuTensor, type GpuView } from '../gpu/tensor.ts';
import { isFloatDType, storageBytes, type FloatDType } from '../io/dtypes.ts';
import { PreparedCombine } from '../kernels/mergeCombine.ts';
import { computeDeltas, deltaChunkElements } from '../kernels/mergeDeltas.ts';
import { uploadInput } from './adapterInput.ts';
import { resolveTensorParams } from './coefficients.ts';
import { checkMergeable, floatDtypeOf, planMerge, recipeOutDtype, type MergeProgress, type PlannedTensor } from './execute.ts';
import type { FloatDTypeName } from '../io/dtypes.ts';
import type { MergeRecipe } from './recipe.ts';
import { checkWholeDeltas } from './methods/params.ts';
import type { RowCombine } from './methods/types.ts';
import { DEFAULT_METHOD, getMethod, type MergeMethod, type MergeParams } from './registry.ts';

/**
 * The interactive fast path (DEM's coefficient search): the base's tensors are uploaded once and
 * the packed distribution vectors Δ (N, n) f32 of every mergeable tensor are computed once
 * (computeDeltas, the same kernel streamMerge runs, so the same bits); each merge() then runs
 * only the methods' combine kernels on the resident Δ and writes into output buffers that are
 * reused from one merge to the next. The outputs equal `dem merge`'s bit for bit: same kernels,
 * same per-tensor parameters (resolveTensorParams), same tensor index for DARE's RNG.
 *
 * linear and slerp read the models themselves, not Δ, in the streaming path; to stay bit-exact
 * with it they upload the models' tensors again on every merge (one tensor at a time).
 *
 * Methods that are one combine over Δ (task_arithmetic: MergeMethod.rowCombine) keep a prepared
 * combine per tensor, so a re-merge writes the new coefficients and records every tensor's
 * dispatch into one compute pass: one submit, no allocation, one error scope.
 *
 * A tensor whose packed Δ exceeds the device's largest buffer binding (a 150k-token embedding
 * with 4 fine-tunes is 2.2 GB) is kept in chunks along its elements; task_arithmetic (and
 * linear, from the models) merge it chunk by chunk (same kernels, same bits); the other methods,
 * which need all of a tensor's Δ at once, refuse it with GpuOutOfMemoryError.
 *
 * The output map is what GpuModel.create takes as weights (canonical names). Its buffers belong
 * to the ResidentMerge and are overwritten in place by the next merge(), so a GpuModel built on
 * them once sees every later merge; they stay valid until destroy().
 */
export interface ResidentCreateOptions {
  signal?: AbortSignal;
  onProgress?: (p: MergeProgress) => void;
}

/** A merge without a recipe: one method, one weight per model, the same parameters for every tensor. */
export interface ResidentMergeSpec {
  method: string;
  weights: readonly number[];
  params?: MergeParams;
  /** Output dtype of the merged tensors (default the base's). */
  dtype?: FloatDTypeName;
}

export interface ResidentMergeOptions {
  signal?: AbortSignal;
}

interface Entry {
  planned: PlannedTensor;
  /** Index in the base's tensor order (DARE's RNG counter, as in streamMerge). */
  index: number;
  /** θ_base in its stored dtype; the output itself for copied tensors. */
  base: GPUBuffer;
  /** The packed Δ, one chunk unless (N, n) f32 exceeds the device's largest binding; merged tensors only. */
  chunks?: Chunk[];
  /** Reused output buffer and its dtype; merged tensors only. */
  out?: GPUBuffer;
  outDtype?: FloatDType;
}

/** Elements [offset, offset + n) of a tensor: their (N, n) f32 Δ and the combine prepared over them. */
interface Chunk {
  offset: number;
  n: number;
  deltas: GPUBuffer;
  /** task_arithmetic's combine of this chunk into the output, prepared once (PreparedCombine). */
  combine?: PreparedCombine;
}

const padded = (bytes: number): number => Math.max(4, Math.ceil(bytes / 4) * 4);

/** Bytes the resident data takes: base + Δ + one output per merged tensor in the base's dtype. */
export function residentBytes(base: Checkpoint, models: readonly Checkpoint[]): { base: number; deltas: number; outputs: number; transient: number; total: number } {
  const plan = planMerge({ recipe: { version: 1, method: DEFAULT_METHOD, base: base.name, models: models.map((m) => ({ model: m.name, parameters: {} })), parameters: {} }, base, models });
  let b = 0;
  let d = 0;
  let o = 0;
  let transient = 0;
  for (const t of plan) {
    b += padded(t.ref.byteLength);
    if (!t.merged) continue;
    const n = elementCount(t.ref.shape);
    d += padded(models.length * n * 4);
    o += storageBytes(t.dtype, n);
    // While Δ of one tensor is computed its models are on the GPU too.
    transient = Math.max(transient, models.reduce((s, m) => s + padded(m.tensors.get(t.ref.name)!.byteLength), 0));
  }
  return { base: b, deltas: d, outputs: o, transient, total: b + d + o + transient };
}

export class ResidentMerge {
  readonly rt: GpuRuntime;
  readonly base: Checkpoint;
  readonly models: readonly Checkpoint[];
  private readonly entries: Entry[];
  private destroyed = false;

  private constructor(rt: GpuRuntime, base: Checkpoint, models: readonly Checkpoint[], entries: Entry[]) {
    this.rt = rt;
    this.base = base;
    this.models = models;
    this.entries = entries;
  }

  /**
   * Uploads the base and computes every Δ. Throws GpuOutOfMemoryError before uploading anything
   * when the resident data would not fit the runtime's memory budget (fall back to streamMerge).
   */
  static async create(rt: GpuRuntime, base: Checkpoint, models: readonly Checkpoint[], opts: ResidentCreateOptions = {}): Promise<ResidentMerge> {
    if (models.length === 0) throw new InputError('a resident merge needs at least one model besides the base');
    const probe: MergeRecipe = { version: 1, method: DEFAULT_METHOD, base: base.name, models: models.map((m) => ({ model: m.name, parameters: {} })), parameters: {} };
    checkMergeable({ recipe: probe, base, models });
    const need = residentBytes(base, models);
    const { live, budget } = rt.memory;
    if (live + need.total > budget) {
      throw new GpuOutOfMemoryError(
        `keeping '${base.name}' and ${models.length} distribution vector(s) on the GPU needs ${need.total} bytes ` +
          `(base ${need.base}, Δ ${need.deltas}, outputs ${need.outputs}, upload ${need.transient}) but the budget leaves ${budget - live} of ${budget}; ` +
          'merge tensor by tensor instead (streamMerge)',
      );
    }
    const plan = planMerge({ recipe: probe, base, models });
    for (const t of plan) {
      const n = elementCount(t.ref.shape);
      if (t.merged && n > 0 && deltaChunkElements(rt.limits, models.length, n) < 1) {
        throw new GpuOutOfMemoryError(
          `${models.length} distribution vectors do not fit the device's largest buffer binding even in chunks; merge tensor by tensor instead (streamMerge)`,
          { tensor: t.ref.storedName },
        );
      }
    }
    const entries: Entry[] = [];
    const made = new ResidentMerge(rt, base, models, entries);
    let bytesRead = 0;
    try {
      for (const [done, planned] of plan.entries()) {
        throwIfAborted(opts.signal);
        const { ref } = planned;
        const data = await base.read(ref.name);
        bytesRead += data.byteLength;
        const entry: Entry = { planned, index: planned.index, base: rt.upload(`ResidentMerge.base.${ref.name}`, data) };
        entries.push(entry);
        if (planned.merged) {
          const uploads: GPUBuffer[] = [];
          try {
            const gpuModels: GpuView[] = [];
            for (const [i, m] of models.entries()) {
              const input = await uploadInput(rt, m, ref.name, `ResidentMerge.model${i}.${ref.name}`);
              bytesRead += input.bytesRead;
              uploads.push(input.view.buffer);
              gpuModels.push(input.view);
            }
            const n = elementCount(ref.shape);
            const size = Math.max(1, deltaChunkElements(rt.limits, models.length, n));
            entry.chunks = [];
            for (let offset = 0; offset === 0 || offset < n; offset += size) {
              const count = Math.min(size, n - offset); // an empty tensor is one empty chunk
              const deltas = await rt.scoped(`ResidentMerge Δ ${ref.storedName}`, () =>
                computeDeltas(rt, { buffer: entry.base, dtype: floatDtypeOf(ref), offset }, gpuModels.map((m) => ({ ...m, offset })), count),
              );
              entry.chunks.push({ offset, n: count, deltas });
            }
          } finally {
            rt.release(...uploads);
          }
        }
        opts.onProgress?.({ done: done + 1, total: plan.length, tensor: ref.storedName, bytesRead });
      }
    } catch (error) {
      made.destroy();
      throw error;
    }
    return made;
  }

  /** Bytes this merge holds on the GPU now (base, Δ, outputs). */
  get memory(): { bytes: number; base: number; deltas: number; outputs: number } {
    let base = 0;
    let deltas = 0;
    let outputs = 0;
    for (const e of this.entries) {
      base += e.base.size;
      for (const c of e.chunks ?? []) deltas += c.deltas.size;
      outputs += e.out?.size ?? 0;
    }
    return { bytes: base + deltas + outputs, base, deltas, outputs };
  }

  /** Tensors in the base's order, as planned (merged or copied). */
  get tensors(): readonly PlannedTensor[] {
    return this.entries.map((e) => e.planned);
  }

  /**
   * Runs one merge on the resident data. With a recipe its models must be the checkpoints given
   * to create(), in the same order; per-layer schedules and filters are resolved per tensor.
   */
  async merge(what: MergeRecipe | ResidentMergeSpec, opts: ResidentMergeOptions = {}): Promise<Map<string, GpuTensor>> {
    if (this.destroyed) throw new InputError('this resident merge was destroyed');
    const rt = this.rt;
    const method = getMethod(what.method);
    const N = this.models.length;
    const recipe = 'version' in what ? what : undefined;
    const spec = 'version' in what ? undefined : what;
    if (recipe && recipe.models.length !== N) throw new InputError(`the recipe lists ${recipe.models.length} models but the resident merge holds ${N}`);
    if (spec && spec.weights.length !== N) throw new InputError(`${spec.weights.length} weights for the ${N} resident models`);
    const recipeDtype = recipeOutDtype(what);
    const numLayers = this.base.spec.numLayers;
    const out = new Map<string, GpuTensor>();
    // rowCombine methods: every tensor's dispatch goes into one pass, submitted after the loop.
    const batched: { chunk: Chunk; combine: RowCombine }[] | undefined = method.rowCombine ? [] : undefined;
    for (const e of this.entries) {
      throwIfAborted(opts.signal);
      const { ref } = e.planned;
      if (!e.planned.merged || !e.chunks) {
        // Copied tensors the model could read (floats); buffers of other dtypes stay out.
        if (isFloatDType(ref.dtype)) out.set(ref.name, { buffer: e.base, dtype: ref.dtype, shape: ref.shape });
        continue;
      }
      const n = elementCount(ref.shape);
      const baseDtype = floatDtypeOf(ref);
      const outDtype = recipeDtype ?? baseDtype;
      if (e.out && e.outDtype !== outDtype) {
        for (const c of e.chunks) {
          c.combine?.destroy();
          c.combine = undefined;
        }
        rt.release(e.out);
        e.out = undefined;
      }
      e.out ??= rt.storage(`ResidentMerge.out.${ref.name}`, storageBytes(outDtype, n));
      e.outDtype = outDtype;
      const { weights, params }: { weights: readonly number[]; params: MergeParams } = recipe
        ? resolveTensorParams(recipe, ref.storedName, ref.layer, numLayers)
        : { weights: spec!.weights, params: spec!.params ?? {} };
      const ctx = { tensorIndex: e.index, tensor: ref.storedName };
      const base: GpuView = { buffer: e.base, dtype: baseDtype };
      if (batched) {
        const combine = method.rowCombine!(weights, params, ctx);
        for (const c of e.chunks) {
          c.combine ??= PreparedCombine.create(rt, { base: { ...base, offset: c.offset }, rows: c.deltas, n: c.n, outDtype, rowCount: N, dst: e.out, dstOffset: c.offset });
          batched.push({ chunk: c, combine });
        }
      } else {
        // Elementwise methods that read the models chunk by themselves (inChunks); the others need all of a tensor's Δ at once.
        if (e.chunks.length > 1 && !(method.capabilities.chunkable && !method.capabilities.readsDeltas)) checkWholeDeltas(rt, method.name, N, n, ref.storedName);
        const result = await this.combine(method, e, base, n, weights, outDtype, params, ctx);
        if (result !== e.out) throw new InputError(`merge method '${method.name}' did not write into the resident output`, { tensor: ref.storedName });
      }
      out.set(ref.name, { buffer: e.out, dtype: outDtype, shape: ref.shape });
    }
    if (batched?.length) {
      await rt.scoped(`ResidentMerge ${method.name} (${batched.length} tensors)`, () => {
        const encoder = rt.device.createCommandEncoder({ label: 'ResidentMerge.encoder' });
        const pass = encoder.beginComputePass({ label: 'ResidentMerge.pass' });
        for (const { chunk, combine } of batched) {
          chunk.combine!.set(combine.coefficients, combine.alpha);
          chunk.combine!.encode(pass);
        }
        pass.end();
        rt.device.queue.submit([encoder.finish()]);
      });
    }
    return out;
  }

  private async combine(
    method: MergeMethod,
    e: Entry,
    base: GpuView,
    n: number,
    weights: readonly number[],
    outDtype: FloatDType,
    params: MergeParams,
    ctx: { tensorIndex: number; tensor: string },
  ): Promise<GPUBuffer> {
    const rt = this.rt;
    const { ref } = e.planned;
    const what = `ResidentMerge ${method.name} ${ref.storedName}`;
    if (method.capabilities.readsDeltas) {
      // Δ-based methods read Δ, never the models: the entries only carry the count (and the
      // resident Δ buffer as a placeholder) for the methods' argument checks.
      const deltas = e.chunks![0]!.deltas;
      const models = this.models.map((m) => ({ buffer: deltas, dtype: floatDtypeOf(m.tensors.get(ref.name)!) }));
      return rt.scoped(what, () => method.gpu(rt, { n, base, models, weights, outDtype, deltas, dst: e.out }, params, ctx));
    }
    // linear/slerp combine the models themselves in the streaming path: upload them for this tensor.
    const uploads: GPUBuffer[] = [];
    try {
      const models: GpuView[] = [];
      for (const [i, m] of this.models.entries()) {
        const { view } = await uploadInput(rt, m, ref.name, `ResidentMerge.model${i}.${ref.name}`);
        uploads.push(view.buffer);
        models.push(view);
      }
      const b = method.capabilities.needsBase ? base : undefined;
      return await rt.scoped(what, () => method.gpu(rt, { n, base: b, models, weights, outDtype, dst: e.out }, params, ctx));
    } finally {
      rt.release(...uploads);
    }
  }

  /** Releases every resident buffer (and the outputs handed out). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const e of this.entries) {
      for (const c of e.chunks ?? []) {
        c.combine?.destroy();
        this.rt.release(c.deltas);
      }
      this.rt.release(e.base, e.out);
    }
    this.entries.length = 0;
  }
}
