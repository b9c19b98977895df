import { GpuOutOfMemoryError, IncompatibleCheckpointError, InputError, throwIfAborted } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import type { Checkpoint, TensorRef } from '../io/checkpoint.ts';
import { checkCompatibility } from '../io/compat.ts';
import { elementCount, type GpuTensor } from '../gpu/tensor.ts';
import { dtypeFromName, dtypeSize, isFloatDType, type DType, type FloatDType } from '../io/dtypes.ts';
import { resolveTensorParams } from './coefficients.ts';
import type { MergeRecipe } from './recipe.ts';
import { getMethod } from './registry.ts';
import { uploadInput } from './adapterInput.ts';

/**
 * Streams a merge tensor by tensor: for each tensor of the base, read its bytes and the
 * fine-tunes' (lazily, from the files), upload, run the method's kernel, and hand the result on
 * (as bytes for export, or as a GPU buffer for the forward pass) before the next tensor is read.
 * GPU memory therefore peaks at one tensor's inputs + packed deltas + output, whatever the
 * checkpoint's size. Non-float tensors and buffers (GPT-2's attn.bias masks) are the base's bytes.
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

/** Refuses checkpoints that cannot be merged, listing every error-level mismatch at once. */
export function checkMergeable(job: MergeJob): void {
  const others = job.models.filter((m) => m !== job.base);
  const report = checkCompatibility(job.base, others);
  const errors = report.items.filter((i) => i.severity === 'error');
  if (errors.length > 0) {
    throw new IncompatibleCheckpointError(
      `cannot merge with base '${job.base.name}': ${errors.length} mismatch${errors.length === 1 ? '' : 'es'}:\n` +
        errors.map((e) => `  ${e.checkpoint}${e.tensor ? ` [${e.tensor}]` : ''}: ${e.message}`).join('\n'),
    );
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
  const n = elementCount(item.ref.shape);
  const inputs = [...(getMethod(job.recipe.method).capabilities.needsBase ? [job.base] : []), ...job.models].reduce((s, c) => s + (c.tensors.get(item.ref.name)?.byteLength ?? 0), 0);
  const need = inputs + job.models.length * n * 4 + item.byteLength;
  return new GpuOutOfMemoryError(
    `merging this tensor needs about ${need} bytes of GPU memory at once (inputs ${inputs}, Δ ${job.models.length * n * 4}, output ${item.byteLength}); ` +
      `the budget is ${rt.memory.budget} bytes (${error.message})`,
    { tensor: item.ref.storedName, cause: error },
  );
}

export async function* streamMerge(rt: GpuRuntime, job: MergeJob, options: StreamMergeOptions): AsyncGenerator<MergedTensor> {
  checkMergeable(job);
  const method = getMethod(job.recipe.method);
  const plan = planMerge(job);
  const numLayers = job.base.spec.numLayers;
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
    const inputs: GPUBuffer[] = [];
    const upload = async (ckpt: Checkpoint, role: string): Promise<GpuTensor> => {
      const { view, bytesRead: read } = await uploadInput(rt, ckpt, ref.name, `merge.${role}.${ref.name}`);
      bytesRead += read;
      inputs.push(view.buffer);
      return { buffer: view.buffer, dtype: view.dtype, shape: ref.shape };
    };
    let out: GPUBuffer | undefined;
    try {
      const base = method.capabilities.needsBase ? await upload(job.base, 'base') : undefined;
      const models: GpuTensor[] = [];
      for (const [i, m] of job.models.entries()) models.push(await upload(m, `model${i}`));
      throwIfAborted(options.signal);
      out = await rt.scoped(`merge ${method.name} ${ref.storedName}`, () =>
        method.gpu(
          rt,
          { n, base, models, weights: resolved.weights, outDtype: item.dtype },
          resolved.params,
          { tensorIndex: item.index, tensor: ref.storedName },
        ),
      );
    } catch (error) {
      throw outOfMemory(error, rt, job, item);
    } finally {
      rt.release(...inputs);
    }
    if (options.output === 'gpu') {
      yield { ...item, buffer: out };
    } else {
      try {
        const data = new Uint8Array(await rt.read(out, 0, item.byteLength));
        yield { ...item, data };
      } finally {
        rt.release(out);
      }
    }
    options.onProgress?.({ done: index + 1, total: plan.length, tensor: ref.storedName, bytesRead });
  }
}
