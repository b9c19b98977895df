import { GpuOutOfMemoryError, InputError, throwIfAborted } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { elementCount, type GpuTensor, type GpuView } from '../gpu/tensor.ts';
import type { BoundLoraTarget } from '../io/adapter.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { isFloatDType, storageBytes, type FloatDType } from '../io/dtypes.ts';
import { gpuDecodeToF32, gpuEncodeFromF32 } from '../kernels/decode.ts';
import { loraDelta } from '../kernels/loraDelta.ts';
import { combineRows } from '../kernels/mergeCombine.ts';
import { heldRowsBytes, releaseTensorRows, tensorRowsBytes, type TensorRows } from '../kernels/mergeRows.ts';
import { uploadModelRows } from './inputs.ts';
import { resolveTensorParams } from './coefficients.ts';
import { checkMergeable, floatDtypeOf, planMerge, recipeOutDtype, type MergeProgress, type PlannedTensor } from './execute.ts';
import type { MergeRecipe } from './recipe.ts';
import { DEFAULT_METHOD, getMethod } from './registry.ts';

/**
 * The resident merge when some members are LoRA adapters, for the methods that are one row
 * combine (task_arithmetic: MergeMethod.rowCombine): an adapter's distribution vector stays in
 * its factored form on the GPU, so its resident cost is its factors (r·(in + out) per matrix),
 * not a dense (n) f32 row per tensor. Per tensor:
 *   acc (f32) = α·θ + Σ_dense c_r Δ_r          (combineRows over the rows kept dense: full
 *                                                fine-tunes, adapters' modules_to_save)
 *   acc      += (c_j s_j) · B_j A_j             (shaders/lora/delta.wgsl, MODE add, per adapter)
 *   out       = acc rounded once to the output dtype (the f32 accumulator is the output for F32).
 * The result is the same sum as the streaming merge's, summed in another order, so it agrees with
 * it to f32 rounding rather than bit for bit. Methods without rowCombine are refused (the
 * Workspace streams them). A tensor whose dense rows exceed one buffer binding is refused with
 * GpuOutOfMemoryError (no chunking here; the Workspace streams then too).
 */
interface Factor {
  /** The member's index in the recipe. */
  model: number;
  target: BoundLoraTarget;
  a: GPUBuffer;
  b: GPUBuffer;
}

interface Entry {
  planned: PlannedTensor;
  base: GPUBuffer;
  /** Members whose Δ of this tensor is kept dense (their θ_i as stored, in rows: Δ is formed in the kernel), by recipe index. */
  rows: number[];
  deltas?: TensorRows;
  factors: Factor[];
  /** f32 accumulator (the output itself for F32) and the output in another dtype. */
  acc?: GPUBuffer;
  out?: GPUBuffer;
  outDtype?: FloatDType;
}

const padded = (bytes: number): number => Math.max(4, Math.ceil(bytes / 4) * 4);

/** Does this member change `name` through factors (not a dense tensor)? */
const factorOf = (m: Checkpoint, name: string): BoundLoraTarget | undefined => m.adapter?.targets.get(name);
/** Does this member change `name` with a dense tensor (a full fine-tune, or an adapter's replacement)? */
const denseIn = (m: Checkpoint, name: string): boolean => (m.adapter ? m.adapter.replaced.has(name) : true);

/** Bytes FactoredMerge holds: base, dense rows, factors, and per merged tensor an f32 accumulator (+ output in a 16-bit dtype). */
export function factoredBytes(limits: GpuRuntime['limits'], base: Checkpoint, models: readonly Checkpoint[], outDtype?: FloatDType): { base: number; deltas: number; factors: number; outputs: number; total: number } {
  const plan = planMerge({ recipe: { version: 1, method: DEFAULT_METHOD, base: base.name, models: models.map((m) => ({ model: m.name, parameters: {} })), parameters: {} }, base, models });
  let b = 0;
  let d = 0;
  let f = 0;
  let o = 0;
  for (const t of plan) {
    b += padded(t.ref.byteLength);
    if (!t.merged) continue;
    const n = elementCount(t.ref.shape);
    const dense = models.filter((m) => denseIn(m, t.ref.name) && !factorOf(m, t.ref.name));
    const rows = dense.length;
    if (rows) d += tensorRowsBytes(limits, dense.map((m) => floatDtypeOf(m.tensors.get(t.ref.name)!)), n);
    const targets = models.map((m) => factorOf(m, t.ref.name)).filter((x) => x !== undefined);
    for (const x of targets) f += padded(x.a.byteLength) + padded(x.b.byteLength);
    const out = outDtype ?? t.dtype;
    if (targets.length) o += padded(n * 4) + (out === 'F32' ? 0 : padded(storageBytes(out, n)));
    else if (rows || out !== t.ref.dtype) o += padded(storageBytes(out, n)) + (rows ? 0 : padded(n * 4));
  }
  return { base: b, deltas: d, factors: f, outputs: o, total: b + d + f + o };
}

/** alpha·θ + Σ_r c_r Δ_r over every chunk of the dense rows into `dst` (combine.wgsl forms Δ from θ_i). */
function combineAll(rt: GpuRuntime, base: GpuView, alpha: number, rows: TensorRows, coefficients: number[], outDtype: FloatDType, dst: GPUBuffer): GPUBuffer {
  for (const chunk of rows.chunks) combineRows(rt, { base, alpha, chunk, coefficients, outDtype, dst });
  return dst;
}

export class FactoredMerge {
  private destroyed = false;
  /** Dense rows and factors as stored: always the exact residency. */
  readonly residency = 'exact' as const;
  /** Never compressed: its numbers are `dem merge`'s (to f32 rounding). */
  readonly approximate = false;

  private constructor(
    readonly rt: GpuRuntime,
    readonly base: Checkpoint,
    readonly models: readonly Checkpoint[],
    private readonly entries: Entry[],
  ) {}

  /** Uploads the base and the factors and computes the dense rows; GpuOutOfMemoryError before any upload when it would not fit. */
  static async create(rt: GpuRuntime, base: Checkpoint, models: readonly Checkpoint[], opts: { signal?: AbortSignal; onProgress?: (p: MergeProgress) => void } = {}): Promise<FactoredMerge> {
    if (models.length === 0) throw new InputError('a resident merge needs at least one model besides the base');
    const probe: MergeRecipe = { version: 1, method: DEFAULT_METHOD, base: base.name, models: models.map((m) => ({ model: m.name, parameters: {} })), parameters: {} };
    checkMergeable({ recipe: probe, base, models });
    const need = factoredBytes(rt.limits, base, models);
    const { live, budget } = rt.memory;
    if (live + need.total > budget) {
      throw new GpuOutOfMemoryError(`keeping '${base.name}', its dense distribution vectors and the adapters' factors on the GPU needs ${need.total} bytes but the budget leaves ${budget - live}; merge tensor by tensor instead`);
    }
    const plan = planMerge({ recipe: probe, base, models });
    const maxBinding = Math.min(rt.limits.maxBufferSize, rt.limits.maxStorageBufferBindingSize);
    for (const t of plan) {
      const rows = models.filter((m) => denseIn(m, t.ref.name)).length;
      if (t.merged && rows * elementCount(t.ref.shape) * 4 > maxBinding) {
        throw new GpuOutOfMemoryError(`${rows} dense distribution vectors exceed the device's largest buffer binding; merge tensor by tensor instead`, { tensor: t.ref.storedName });
      }
    }
    const entries: Entry[] = [];
    const made = new FactoredMerge(rt, base, models, entries);
    let bytesRead = 0;
    try {
      for (const [done, planned] of plan.entries()) {
        throwIfAborted(opts.signal);
        const { ref } = planned;
        const data = await base.read(ref.name);
        bytesRead += data.byteLength;
        const entry: Entry = { planned, base: rt.upload(`FactoredMerge.base.${ref.name}`, data), rows: [], factors: [] };
        entries.push(entry);
        if (planned.merged) {
          const dense: number[] = [];
          for (const [i, m] of models.entries()) {
            const target = factorOf(m, ref.name);
            if (target) {
              const [a, b] = await Promise.all([m.adapter!.read(target.a), m.adapter!.read(target.b)]);
              bytesRead += a.byteLength + b.byteLength;
              entry.factors.push({ model: i, target, a: rt.upload(`FactoredMerge.lora_A.${i}.${ref.name}`, a), b: rt.upload(`FactoredMerge.lora_B.${i}.${ref.name}`, b) });
            } else if (denseIn(m, ref.name)) dense.push(i);
          }
          if (dense.length) {
            const upload = await uploadModelRows(rt, ref, dense.map((i) => models[i]!), opts.signal);
            entry.deltas = upload.rows;
            entry.rows = dense;
            bytesRead += upload.bytesRead;
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

  /** Bytes held on the GPU now. */
  get memory(): { bytes: number; base: number; deltas: number; factors: number; outputs: number } {
    let base = 0;
    let deltas = 0;
    let factors = 0;
    let outputs = 0;
    for (const e of this.entries) {
      base += e.base.size;
      deltas += heldRowsBytes(e.deltas);
      for (const f of e.factors) factors += f.a.size + f.b.size;
      outputs += (e.acc?.size ?? 0) + (e.out?.size ?? 0);
    }
    return { bytes: base + deltas + factors + outputs, base, deltas, factors, outputs };
  }

  /** Whether merge() can run this method (one row combine). */
  static supports(method: string): boolean {
    return getMethod(method).rowCombine !== undefined;
  }

  /** One merge; the recipe's models are the checkpoints given to create(), in order. Outputs are reused by the next merge. */
  async merge(recipe: MergeRecipe, opts: { signal?: AbortSignal } = {}): Promise<Map<string, GpuTensor>> {
    if (this.destroyed) throw new InputError('this resident merge was destroyed');
    const rt = this.rt;
    const method = getMethod(recipe.method);
    if (!method.rowCombine) throw new InputError(`merge method '${method.name}' needs every distribution vector dense; with LoRA adapters it is merged tensor by tensor`);
    if (recipe.models.length !== this.models.length) throw new InputError(`the recipe lists ${recipe.models.length} models but the resident merge holds ${this.models.length}`);
    const recipeDtype = recipeOutDtype(recipe);
    const out = new Map<string, GpuTensor>();
    for (const e of this.entries) {
      throwIfAborted(opts.signal);
      const { ref } = e.planned;
      if (!e.planned.merged) {
        if (isFloatDType(ref.dtype)) out.set(ref.name, { buffer: e.base, dtype: ref.dtype, shape: ref.shape });
        continue;
      }
      const n = elementCount(ref.shape);
      const baseDtype = floatDtypeOf(ref);
      const outDtype = recipeDtype ?? baseDtype;
      if (e.outDtype !== outDtype) {
        rt.release(e.acc, e.out);
        e.acc = undefined;
        e.out = undefined;
        e.outDtype = outDtype;
      }
      const { weights, params } = resolveTensorParams(recipe, ref.storedName, ref.layer, this.base.spec.numLayers);
      const ctx = { tensorIndex: e.planned.index, tensor: ref.storedName };
      const { alpha, coefficients } = method.rowCombine(weights, params, ctx);
      const base: GpuView = { buffer: e.base, dtype: baseDtype };
      const result = await rt.scoped(`FactoredMerge ${method.name} ${ref.storedName}`, async () => {
        if (!e.factors.length) {
          if (e.deltas || outDtype !== baseDtype) e.out ??= rt.storage(`FactoredMerge.out.${ref.name}`, storageBytes(outDtype, n));
          if (e.deltas) return combineAll(rt, base, alpha, e.deltas, e.rows.map((r) => coefficients[r]!), outDtype, e.out!);
          // No member changes this tensor: the base itself (α = 1), converted when another dtype is asked for.
          if (alpha !== 1) throw new InputError(`merge method '${method.name}' scales the base; not supported with adapters resident`, { tensor: ref.storedName });
          if (outDtype === baseDtype) return e.base;
          return gpuEncodeFromF32(rt, gpuDecodeToF32(rt, e.base, baseDtype, n, (e.acc ??= rt.storage(`FactoredMerge.acc.${ref.name}`, n * 4))), outDtype, n, e.out);
        }
        const acc = (e.acc ??= rt.storage(`FactoredMerge.acc.${ref.name}`, n * 4));
        if (e.deltas) combineAll(rt, base, alpha, e.deltas, e.rows.map((r) => coefficients[r]!), 'F32', acc);
        else if (alpha === 1) gpuDecodeToF32(rt, e.base, baseDtype, n, acc);
        else throw new InputError(`merge method '${method.name}' scales the base; not supported with adapters resident`, { tensor: ref.storedName });
        for (const f of e.factors) {
          const c = coefficients[f.model]!;
          if (c === 0) continue;
          const t = f.target;
          loraDelta(rt, { a: { buffer: f.a, dtype: t.a.dtype }, b: { buffer: f.b, dtype: t.b.dtype }, rank: t.rank, out: t.out, in: t.in, scale: c * t.scale, transposed: t.transposed }, { mode: 'add', dst: acc });
        }
        if (outDtype === 'F32') return acc;
        e.out ??= rt.storage(`FactoredMerge.out.${ref.name}`, storageBytes(outDtype, n));
        return gpuEncodeFromF32(rt, acc, outDtype, n, e.out);
      });
      out.set(ref.name, { buffer: result, dtype: outDtype, shape: ref.shape });
    }
    return out;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const e of this.entries) {
      for (const f of e.factors) this.rt.release(f.a, f.b);
      releaseTensorRows(this.rt, e.deltas);
      this.rt.release(e.base, e.acc, e.out);
    }
    this.entries.length = 0;
  }
}
