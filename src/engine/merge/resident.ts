import { GpuOutOfMemoryError, InputError, throwIfAborted } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { elementCount, type GpuTensor, type GpuView } from '../gpu/tensor.ts';
import { isFloatDType, storageBytes, type FloatDType } from '../io/dtypes.ts';
import { PreparedCombine } from '../kernels/mergeCombine.ts';
import { mergeScratchBytes, preparedCombineBytes } from '../kernels/merge.ts';
import { chunkRanges, heldRowsBytes, releaseTensorRows, rowChunkElements, tensorRowsBytes, type RowCode, type TensorRows } from '../kernels/mergeRows.ts';
import { resolveTensorParams } from './coefficients.ts';
import { checkMergeable, floatDtypeOf, planMerge, recipeOutDtype, type MergeProgress, type PlannedTensor } from './execute.ts';
import type { FloatDTypeName } from '../io/dtypes.ts';
import { uploadCompressedRows, uploadModelRows } from './inputs.ts';
import type { MergeRecipe } from './recipe.ts';
import type { RowCombine } from './methods/types.ts';
import { DEFAULT_METHOD, getMethod, type MergeParams } from './registry.ts';

/**
 * The interactive fast path (DEM's coefficient search): the base's tensors and every fine-tune's
 * mergeable tensors are uploaded once and stay on the GPU; each merge() then runs only the
 * methods' kernels and writes into output buffers reused from one merge to the next.
 *
 * Residency:
 * - 'exact' (lossless, the default): the models are kept in their stored dtypes as rows
 *   (kernels/mergeRows.ts; BF16 stays 2 bytes an element) and every kernel forms Δ = θ_i − θ in
 *   f32 itself — the same rows, kernels and per-tensor parameters as streamMerge (`dem merge`),
 *   so the outputs equal it bit for bit. GPU memory: (N + 1) stored-size models plus the merged one.
 * - 'int8' / 'bf16' (approximate, opt-in): each Δ is kept compressed (int8 blocks of 64 with an
 *   f32 scale, about 1.06 bytes an element; or BF16, for F32 checkpoints) — for exploring and
 *   searching when the exact set does not fit; numbers measured on it are labelled, and a
 *   recipe is re-scored with an exact merge before it is applied or exported (the Workspace).
 *
 * Methods that are one combine (task_arithmetic: MergeMethod.rowCombine) keep a prepared combine
 * per chunk, so a re-merge writes the new coefficients and records every tensor's dispatch into
 * one compute pass: one submit, no allocation, one error scope. The others run their gpu() on
 * the resident rows; whole-tensor selections and norms reduce across chunks, so every method
 * merges tensors larger than the device's largest binding.
 *
 * The output map is what GpuModel.create takes as weights (canonical names). Its buffers belong
 * to the ResidentMerge and are overwritten in place by the next merge(), so a GpuModel built on
 * them once sees every later merge; they stay valid until destroy().
 */
export type Residency = 'exact' | 'int8' | 'bf16';

/** The row code each residency keeps a model's tensor in. */
export function residencyCode(residency: Residency, stored: FloatDType): RowCode {
  return residency === 'exact' ? stored : residency === 'int8' ? 'Q8' : 'BF16';
}

export interface ResidentCreateOptions {
  residency?: Residency;
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
  /** The models' rows (or compressed Δ rows); merged tensors only. */
  rows?: TensorRows;
  /** task_arithmetic's combine of each chunk into the output, prepared once (PreparedCombine). */
  combines?: PreparedCombine[];
  /** Reused output buffer and its dtype; merged tensors only. */
  out?: GPUBuffer;
  outDtype?: FloatDType;
}

const padded = (bytes: number): number => Math.max(4, Math.ceil(bytes / 4) * 4);

type Limits = Pick<GPUSupportedLimits, 'maxBufferSize' | 'maxStorageBufferBindingSize' | 'minStorageBufferOffsetAlignment'>;

export interface ResidentBytes {
  /** Every tensor of the base, as stored. */
  base: number;
  /** The models' rows (exact) or the compressed Δ, with chunking and alignment. */
  rows: number;
  /** One output per merged tensor in the base's dtype (the merged model). */
  outputs: number;
  /** task_arithmetic's prepared combines, one per chunk (parameters and coefficients). */
  prepared: number;
  /**
   * Held for one tensor at a time: while loading, one chunk of one model (compressed residency);
   * while merging, the method's scratch (kernels/merge.ts mergeScratchBytes) for the largest tensor.
   */
  transient: number;
  total: number;
}

/** Bytes the resident data takes, from the headers alone (memory plans and the budget check); outputs in `outDtype` (default the base's). */
export function residentBytes(base: Checkpoint, models: readonly Checkpoint[], limits: Limits, residency: Residency = 'exact', outDtype?: FloatDTypeName): ResidentBytes {
  const probe: MergeRecipe = { version: 1, method: DEFAULT_METHOD, base: base.name, models: models.map((m) => ({ model: m.name, parameters: {} })), parameters: {}, ...(outDtype ? { dtype: outDtype } : {}) };
  const plan = planMerge({ recipe: probe, base, models });
  let b = 0;
  let rows = 0;
  let o = 0;
  let prepared = 0;
  let transient = 0;
  for (const t of plan) {
    b += padded(t.ref.byteLength);
    if (!t.merged) continue;
    const n = elementCount(t.ref.shape);
    const codes = models.map((m) => residencyCode(residency, floatDtypeOf(m.tensors.get(t.ref.name)!)));
    const chunks = chunkRanges(limits, codes, n);
    rows += tensorRowsBytes(limits, codes, n);
    o += storageBytes(t.dtype, n);
    prepared += chunks.length * preparedCombineBytes(models.length);
    transient = Math.max(transient, mergeScratchBytes(models.length, n, chunks.length));
    if (residency !== 'exact') {
      const chunk = Math.max(0, ...chunks.map(([, len]) => len));
      transient = Math.max(transient, ...models.map((m) => storageBytes(floatDtypeOf(m.tensors.get(t.ref.name)!), chunk)));
    }
  }
  return { base: b, rows, outputs: o, prepared, transient, total: b + rows + o + prepared + transient };
}

export class ResidentMerge {
  readonly rt: GpuRuntime;
  readonly base: Checkpoint;
  readonly models: readonly Checkpoint[];
  readonly residency: Residency;
  private readonly entries: Entry[];
  private destroyed = false;

  private constructor(rt: GpuRuntime, base: Checkpoint, models: readonly Checkpoint[], residency: Residency, entries: Entry[]) {
    this.rt = rt;
    this.base = base;
    this.models = models;
    this.residency = residency;
    this.entries = entries;
  }

  /** Merges on compressed Δ: its numbers are approximations of `dem merge`'s. */
  get approximate(): boolean {
    return this.residency !== 'exact';
  }

  /**
   * Uploads the base and every model's mergeable tensors (one tensor of one model in flight).
   * Throws GpuOutOfMemoryError before uploading anything when the resident data would not fit
   * the runtime's memory budget (fall back to streamMerge).
   */
  static async create(rt: GpuRuntime, base: Checkpoint, models: readonly Checkpoint[], opts: ResidentCreateOptions = {}): Promise<ResidentMerge> {
    if (models.length === 0) throw new InputError('a resident merge needs at least one model besides the base');
    const residency = opts.residency ?? 'exact';
    const probe: MergeRecipe = { version: 1, method: DEFAULT_METHOD, base: base.name, models: models.map((m) => ({ model: m.name, parameters: {} })), parameters: {} };
    checkMergeable({ recipe: probe, base, models });
    const plan = planMerge({ recipe: probe, base, models });
    for (const t of plan) {
      // Refuses, naming the tensor, rows that do not fit a binding even in chunks.
      if (t.merged) rowChunkElements(rt.limits, models.map((m) => residencyCode(residency, floatDtypeOf(m.tensors.get(t.ref.name)!))), elementCount(t.ref.shape));
    }
    const need = residentBytes(base, models, rt.limits, residency);
    const { live, budget } = rt.memory;
    if (live + need.total > budget) {
      throw new GpuOutOfMemoryError(
        `keeping '${base.name}' and ${models.length} model(s) on the GPU (${residency}) needs ${need.total} bytes ` +
          `(base ${need.base}, models ${need.rows}, outputs ${need.outputs}, prepared ${need.prepared}, one tensor's scratch ${need.transient}) but the budget leaves ${budget - live} of ${budget}; ` +
          'merge tensor by tensor instead (streamMerge)',
      );
    }
    const entries: Entry[] = [];
    const made = new ResidentMerge(rt, base, models, residency, entries);
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
          const upload = residency === 'exact'
            ? await uploadModelRows(rt, ref, models, opts.signal)
            : await uploadCompressedRows(rt, ref, { buffer: entry.base, dtype: floatDtypeOf(ref) }, models, residency === 'int8' ? 'Q8' : 'BF16', opts.signal);
          entry.rows = upload.rows;
          bytesRead += upload.bytesRead;
        }
        opts.onProgress?.({ done: done + 1, total: plan.length, tensor: ref.storedName, bytesRead });
      }
    } catch (error) {
      made.destroy();
      throw error;
    }
    return made;
  }

  /** Bytes this merge holds on the GPU now (base, rows, outputs, prepared combines). */
  get memory(): { bytes: number; base: number; rows: number; outputs: number; prepared: number } {
    let base = 0;
    let rows = 0;
    let outputs = 0;
    let prepared = 0;
    for (const e of this.entries) {
      base += e.base.size;
      rows += heldRowsBytes(e.rows);
      outputs += e.out?.size ?? 0;
      for (const c of e.combines ?? []) prepared += c.bytes;
    }
    return { bytes: base + rows + outputs + prepared, base, rows, outputs, prepared };
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
    const batched: { combine: PreparedCombine; row: RowCombine }[] | undefined = method.rowCombine ? [] : undefined;
    for (const e of this.entries) {
      throwIfAborted(opts.signal);
      const { ref } = e.planned;
      if (!e.planned.merged || !e.rows) {
        // Copied tensors the model could read (floats); buffers of other dtypes stay out.
        if (isFloatDType(ref.dtype)) out.set(ref.name, { buffer: e.base, dtype: ref.dtype, shape: ref.shape });
        continue;
      }
      const n = elementCount(ref.shape);
      const baseDtype = floatDtypeOf(ref);
      const outDtype = recipeDtype ?? baseDtype;
      if (e.out && e.outDtype !== outDtype) {
        for (const c of e.combines ?? []) c.destroy();
        e.combines = undefined;
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
        const row = method.rowCombine!(weights, params, ctx);
        const rows = e.rows;
        const dst = e.out;
        e.combines ??= rows.chunks.map((chunk) => PreparedCombine.create(rt, { base, chunk, outDtype, rowCount: N, dst }));
        for (const combine of e.combines) batched.push({ combine, row });
      } else {
        const result = await rt.scoped(`ResidentMerge ${method.name} ${ref.storedName}`, () =>
          method.gpu(rt, { n, base, rows: e.rows, weights, outDtype, dst: e.out }, params, ctx),
        );
        if (result !== e.out) throw new InputError(`merge method '${method.name}' did not write into the resident output`, { tensor: ref.storedName });
      }
      out.set(ref.name, { buffer: e.out, dtype: outDtype, shape: ref.shape });
    }
    if (batched?.length) {
      await rt.scoped(`ResidentMerge ${method.name} (${batched.length} chunks)`, () => {
        const encoder = rt.device.createCommandEncoder({ label: 'ResidentMerge.encoder' });
        const pass = encoder.beginComputePass({ label: 'ResidentMerge.pass' });
        for (const { combine, row } of batched) {
          combine.set(row.coefficients, row.alpha);
          combine.encode(pass);
        }
        pass.end();
        rt.device.queue.submit([encoder.finish()]);
      });
    }
    return out;
  }

  /** Releases every resident buffer (and the outputs handed out). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const e of this.entries) {
      for (const c of e.combines ?? []) c.destroy();
      releaseTensorRows(this.rt, e.rows);
      this.rt.release(e.base, e.out);
    }
    this.entries.length = 0;
  }
}
