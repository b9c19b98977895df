import { IncompatibleCheckpointError, throwIfAborted } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { isFloatDType } from '../io/dtypes.ts';
import type { ModelSpec } from '../io/spec.ts';
import { forwardWeights } from '../io/weights.ts';
import type { MergedTensor } from '../merge/execute.ts';
import type { GpuTensor } from '../gpu/tensor.ts';
import { GpuModel, type GpuModelOptions } from './forward.ts';

/**
 * Weights for GpuModel on the GPU, from a checkpoint on disk (one tensor read and uploaded at a
 * time, so CPU memory holds one tensor) or from a streamed merge (merge-then-evaluate without
 * writing the merged checkpoint anywhere). Only the tensors the forward pass reads are kept;
 * buffers such as GPT-2's attn.bias masks never reach (or are dropped from) the GPU.
 */
export interface GpuWeights {
  spec: ModelSpec;
  /** Canonical name → tensor, as GpuModel.create takes it. */
  tensors: Map<string, GpuTensor>;
  /** Bytes held on the GPU. */
  bytes: number;
  /** Releases every buffer; idempotent. */
  destroy(): void;
}

export interface LoadProgress {
  done: number;
  total: number;
  tensor: string;
}

export interface LoadOptions {
  signal?: AbortSignal;
  onProgress?: (p: LoadProgress) => void;
}

function weightSet(rt: GpuRuntime, spec: ModelSpec): GpuWeights {
  const tensors = new Map<string, GpuTensor>();
  return {
    spec,
    tensors,
    get bytes() {
      let n = 0;
      for (const t of tensors.values()) n += t.buffer.size;
      return n;
    },
    destroy() {
      rt.release(...[...tensors.values()].map((t) => t.buffer));
      tensors.clear();
    },
  };
}

/** Uploads the checkpoint's forward tensors in their stored dtype. */
export async function uploadCheckpoint(rt: GpuRuntime, ckpt: Checkpoint, options: LoadOptions = {}): Promise<GpuWeights> {
  const wanted = forwardWeights(ckpt.spec).filter((t) => ckpt.tensors.has(t.name));
  const out = weightSet(rt, ckpt.spec);
  try {
    for (const [i, t] of wanted.entries()) {
      throwIfAborted(options.signal);
      const ref = ckpt.tensors.get(t.name)!;
      if (!isFloatDType(ref.dtype)) {
        throw new IncompatibleCheckpointError(`dtype ${ref.dtype} cannot be evaluated (F32, F16 or BF16)`, { file: ref.file, tensor: ref.storedName });
      }
      const data = await ckpt.read(t.name);
      out.tensors.set(t.name, { buffer: rt.upload(`weights.${t.name}`, data), dtype: ref.dtype, shape: ref.shape });
      options.onProgress?.({ done: i + 1, total: wanted.length, tensor: ref.storedName });
    }
  } catch (error) {
    out.destroy();
    throw error;
  }
  return out;
}

/**
 * Collects streamMerge(…, {output: 'gpu'}) results into a weight set: forward tensors are kept
 * (the merge's output dtype), everything else is released as soon as it arrives.
 */
export async function collectMerged(rt: GpuRuntime, spec: ModelSpec, merged: AsyncIterable<MergedTensor>, options: { signal?: AbortSignal } = {}): Promise<GpuWeights> {
  const wanted = new Set(forwardWeights(spec).map((t) => t.name));
  const out = weightSet(rt, spec);
  try {
    for await (const m of merged) {
      const name = m.ref.name;
      if (!m.buffer) throw new IncompatibleCheckpointError('the merge yielded no GPU buffer (use output: "gpu")', { tensor: m.ref.storedName });
      if (!wanted.has(name)) {
        rt.release(m.buffer);
        continue;
      }
      if (!isFloatDType(m.dtype)) {
        rt.release(m.buffer);
        throw new IncompatibleCheckpointError(`dtype ${m.dtype} cannot be evaluated (F32, F16 or BF16)`, { file: m.ref.file, tensor: m.ref.storedName });
      }
      rt.release(out.tensors.get(name)?.buffer);
      out.tensors.set(name, { buffer: m.buffer, dtype: m.dtype, shape: m.ref.shape });
      throwIfAborted(options.signal);
    }
  } catch (error) {
    out.destroy();
    throw error;
  }
  return out;
}

/** A GpuModel together with the weights it reads; destroy() frees both. */
export interface LoadedModel {
  model: GpuModel;
  weights: GpuWeights;
  destroy(): void;
}

export async function createLoadedModel(rt: GpuRuntime, weights: GpuWeights, options: GpuModelOptions = {}): Promise<LoadedModel> {
  let model: GpuModel;
  try {
    model = await GpuModel.create(rt, weights.spec, weights.tensors, options);
  } catch (error) {
    weights.destroy();
    throw error;
  }
  return {
    model,
    weights,
    destroy() {
      model.destroy();
      weights.destroy();
    },
  };
}
