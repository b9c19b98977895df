import { GpuOutOfMemoryError, IncompatibleCheckpointError, InputError, throwIfAborted } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import type { Checkpoint, TensorRef } from '../io/checkpoint.ts';
import { checkCompatibility } from '../io/compat.ts';
import { elementCount, type GpuTensor } from '../gpu/tensor.ts';
import { dtypeFromName, dtypeSize, isFloatDType, type DType, type FloatDType } from '../io/dtypes.ts';
import { releaseTensorRows, type TensorRows } from '../kernels/mergeRows.ts';
import { NonFiniteCounters, type NonFinite } from '../kernels/nonFinite.ts';
import { resolveTensorParams } from './coefficients.ts';
import { uploadModelRows } from './inputs.ts';
import type { MergeRecipe } from './recipe.ts';
import { getMethod } from './registry.ts';

/**
 * Streams a merge tensor by tensor: for each tensor of the base, read its bytes and the
 * fine-tunes' (lazily, from the files, one model at a time), upload the base and the models'
 * rows in their stored dtypes (merge/inputs.ts), run the method's kernels, and hand the result on
 * (as bytes for export, or as a GPU buffer for the forward pass) before the next tensor is read.
 * GPU memory therefore peaks at one tensor's inputs + output, whatever the checkpoint's size.
 * Non-float tensors and buffers (GPT-2's attn.bias masks) are the base's bytes.
 * Every merged tensor is checked for ±Inf/NaN on the GPU (kernels/nonFinite.ts): coefficients
 * within f32 range can still overflow it together (λ·ω·Δ), and such a merge must never be written
 * or evaluated as if it were a model; the error names the first bad tensor.
 */
export interface MergeJob {
  recipe: MergeRecipe;
  base: Checkpoint;
  /** The recipe's models, in recipe order (the base itself may appear for `linear`). */
  models: readonly Checkpoint[];
}

/** One tensor of the output: merged (a float dtype: the recipe's, else the base's) or copied (the base's bytes). */
export type PlannedTensor = {
  ref: TensorRef;
  /** Position in the base's tensor order: DARE's RNG counter, the same whatever the output order or dtype. */
  index: number;
  byteLength: number;
} & ({ merged: true; dtype: FloatDType } | { merged: false; dtype: DType });

export type MergedTensor = PlannedTensor & {
  /** The output bytes (output 'bytes'). */
  data?: Uint8Array;
  /** The output on the GPU in `dtype` (output 'gpu'); the caller owns and releases it. */
  buffer?: GPUBuffer;
};

export interface MergeProgress {
  done: number;
  total: number;
  tensor: string;
  bytesRead: number;
}

export interface StreamMergeOptions {
  output: 'bytes' | 'gpu';
  signal?: AbortSignal;
  onProgress?: (p: MergeProgress) => void;
}

/** The output dtype a recipe asks for (undefined: each tensor keeps the base's). */
export function recipeOutDtype(recipe: Pick<MergeRecipe, 'dtype'>): FloatDType | undefined {
  return recipe.dtype === undefined ? undefined : dtypeFromName(recipe.dtype);
}

/** A merge input's float dtype; IncompatibleCheckpointError naming the file and tensor otherwise. */
export function floatDtypeOf(ref: TensorRef): FloatDType {
  if (!isFloatDType(ref.dtype)) throw new IncompatibleCheckpointError(`dtype ${ref.dtype} cannot be merged or evaluated (F32, F16 or BF16)`, { file: ref.file, tensor: ref.storedName });
  return ref.dtype;
}

const MAX_LISTED = 40;

/** Refuses checkpoints that cannot be merged, listing the error-level mismatches at once. */
export function checkMergeable(job: MergeJob): void {
  const others = job.models.filter((m) => m !== job.base);
  const report = checkCompatibility(job.base, others);
  const errors = report.items.filter((i) => i.severity === 'error');
  if (errors.length > 0) {
    // One line (hosts print one line per error), the first MAX_LISTED mismatches and a count of the rest.
    const listed = errors.slice(0, MAX_LISTED).map((e) => `${e.checkpoint}${e.tensor ? ` [${e.tensor}]` : ''}: ${e.message}`);
    if (errors.length > MAX_LISTED) listed.push(`... (${errors.length - MAX_LISTED} more)`);
    throw new IncompatibleCheckpointError(`cannot merge with base '${job.base.name}': ${errors.length} mismatch${errors.length === 1 ? '' : 'es'}: ${listed.join('; ')}`);
  }
  if (job.models.length !== job.recipe.models.length) {
    throw new InputError(`the recipe lists ${job.recipe.models.length} models but ${job.models.length} checkpoints were given`);
  }
}

/**
 * What the merge will produce, in the order it produces it: the safetensors writer's data order
 * (larger output dtypes first, then by stored name; io/safetensors.ts safetensorsLayout), so an
 * export can append each tensor as it streams in and every shard is a contiguous run of it.
 */
export function planMerge(job: MergeJob): PlannedTensor[] {
  const outDtype = recipeOutDtype(job.recipe);
  const plan = [...job.base.tensors.values()].map((ref, index): PlannedTensor => {
    if (ref.kind === 'param' && isFloatDType(ref.dtype) && job.models.every((m) => m.tensors.has(ref.name))) {
      const dtype = outDtype ?? ref.dtype;
      return { ref, index, dtype, merged: true, byteLength: elementCount(ref.shape) * dtypeSize(dtype) };
    }
    return { ref, index, dtype: ref.dtype, merged: false, byteLength: ref.byteLength };
  });
  const name = (t: PlannedTensor): string => t.ref.storedName;
  return plan.sort((a, b) => dtypeSize(b.dtype) - dtypeSize(a.dtype) || (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
}

/** A budget failure restated for the tensor: what merging it needs at once versus the budget. */
function outOfMemory(error: unknown, rt: GpuRuntime, job: MergeJob, item: PlannedTensor): unknown {
  if (!(error instanceof GpuOutOfMemoryError) || error.tensor) return error;
  const inputs = [...(getMethod(job.recipe.method).capabilities.needsBase ? [job.base] : []), ...job.models].reduce((s, c) => s + (c.tensors.get(item.ref.name)?.byteLength ?? 0), 0);
  const need = inputs + item.byteLength;
  return new GpuOutOfMemoryError(
    `merging this tensor needs about ${need} bytes of GPU memory at once (inputs ${inputs}, output ${item.byteLength}); ` +
      `the budget is ${rt.memory.budget} bytes (${error.message})`,
    { tensor: item.ref.storedName, cause: error },
  );
}

/** InputError naming the tensor a merge made non-finite values in. */
function nonFiniteError(item: PlannedTensor, v: NonFinite): InputError {
  return new InputError(
    `the merge produced ${v.count} non-finite value${v.count === 1 ? '' : 's'} (±Inf/NaN; the first at element ${v.first}) in ${item.dtype}: ` +
      'the coefficients overflow its range or an input holds Inf/NaN; nothing was kept',
    { tensor: item.ref.storedName },
  );
}

export async function* streamMerge(rt: GpuRuntime, job: MergeJob, options: StreamMergeOptions): AsyncGenerator<MergedTensor> {
  checkMergeable(job);
  const method = getMethod(job.recipe.method);
  const plan = planMerge(job);
  const numLayers = job.base.spec.numLayers;
  // One (count, first) pair per planned tensor: 'bytes' reads a tensor's verdict with its bytes,
  // 'gpu' reads them all once, after the last tensor and before anything is built on them.
  const counters = NonFiniteCounters.create(rt, plan.length);
  try {
    yield* mergeEach(rt, job, plan, method, numLayers, counters, options);
    if (options.output === 'gpu') {
      const verdicts = await counters.read();
      const bad = verdicts.findIndex((v) => v.count > 0);
      if (bad >= 0) throw nonFiniteError(plan[bad]!, verdicts[bad]!);
    }
  } finally {
    counters.destroy();
  }
}

async function* mergeEach(
  rt: GpuRuntime,
  job: MergeJob,
  plan: readonly PlannedTensor[],
  method: ReturnType<typeof getMethod>,
  numLayers: number,
  counters: NonFiniteCounters,
  options: StreamMergeOptions,
): AsyncGenerator<MergedTensor> {
  let bytesRead = 0;
  for (const [index, item] of plan.entries()) {
    throwIfAborted(options.signal);
    const { ref } = item;
    if (!item.merged) {
      const data = await job.base.read(ref.name);
      bytesRead += data.byteLength;
      yield options.output === 'gpu' ? { ...item, buffer: rt.upload(`merge.copy.${ref.name}`, data) } : { ...item, data };
      options.onProgress?.({ done: index + 1, total: plan.length, tensor: ref.storedName, bytesRead });
      continue;
    }
    const n = elementCount(ref.shape);
    const resolved = resolveTensorParams(job.recipe, ref.storedName, ref.layer, numLayers);
    let base: GpuTensor | undefined;
    let rows: TensorRows | undefined;
    let out: GPUBuffer | undefined;
    try {
      if (method.capabilities.needsBase) {
        const t = job.base.tensors.get(ref.name)!;
        const data = await job.base.read(ref.name);
        bytesRead += data.byteLength;
        base = { buffer: rt.upload(`merge.base.${ref.name}`, data), dtype: floatDtypeOf(t), shape: t.shape };
      }
      const upload = await uploadModelRows(rt, ref, job.models, options.signal);
      rows = upload.rows;
      bytesRead += upload.bytesRead;
      throwIfAborted(options.signal);
      const inputs = rows;
      out = await rt.scoped(`merge ${method.name} ${ref.storedName}`, () =>
        method.gpu(rt, { n, base, rows: inputs, weights: resolved.weights, outDtype: item.dtype }, resolved.params, { tensorIndex: item.index, tensor: ref.storedName }),
      );
      counters.check(out, item.dtype, n, index);
    } catch (error) {
      if (out) rt.release(out);
      throw outOfMemory(error, rt, job, item);
    } finally {
      releaseTensorRows(rt, rows);
      rt.release(base?.buffer);
    }
    if (options.output === 'gpu') {
      yield { ...item, buffer: out };
    } else {
      try {
        const [bytes, [verdict]] = await Promise.all([rt.read(out, 0, item.byteLength), counters.read(index, 1)]);
        if (verdict!.count > 0) throw nonFiniteError(item, verdict!);
        yield { ...item, data: new Uint8Array(bytes) };
      } finally {
        rt.release(out);
      }
    }
    options.onProgress?.({ done: index + 1, total: plan.length, tensor: ref.storedName, bytesRead });
  }
}
