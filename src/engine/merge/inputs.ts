import { InputError, throwIfAborted } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import type { GpuView } from '../gpu/tensor.ts';
import type { Checkpoint, TensorRef } from '../io/checkpoint.ts';
import { dtypeSize, storageBytes } from '../io/dtypes.ts';
import { compressRow } from '../kernels/mergeCompress.ts';
import { createTensorRows, releaseTensorRows, writeTensorRow, type RowCode, type TensorRows } from '../kernels/mergeRows.ts';
import { floatDtypeOf } from './execute.ts';

/**
 * One tensor's merge inputs on the GPU, from the checkpoints: the models' rows in their stored
 * dtypes (lossless; what streamMerge uploads per tensor and ResidentMerge keeps), or compressed
 * Δ rows (the approximate residency). One model's tensor is read and in flight at a time; its
 * bytes go straight into the rows (no per-model GPU buffer), or through one chunk-sized scratch
 * buffer when compressed.
 */
export interface RowsUpload {
  rows: TensorRows;
  bytesRead: number;
}

/** The models' tensor `ref` (by canonical name) as stored, packed into rows. */
export async function uploadModelRows(rt: GpuRuntime, ref: TensorRef, models: readonly Checkpoint[], signal?: AbortSignal): Promise<RowsUpload> {
  const codes = models.map((m) => floatDtypeOf(m.tensors.get(ref.name)!));
  const n = ref.shape.reduce((a, b) => a * b, 1);
  const rows = createTensorRows(rt, `merge.rows.${ref.name}`, codes, n, 'models');
  let bytesRead = 0;
  try {
    for (const [r, m] of models.entries()) {
      throwIfAborted(signal);
      const bytes = await m.read(ref.name);
      bytesRead += bytes.byteLength;
      writeTensorRow(rt, rows, r, bytes);
    }
  } catch (error) {
    releaseTensorRows(rt, rows);
    throw error;
  }
  return { rows, bytesRead };
}

/**
 * Compressed Δ rows of `ref`: each model's bytes are uploaded one chunk at a time into a scratch
 * buffer and compressed against `base` (the base's tensor already on the GPU) into row r.
 */
export async function uploadCompressedRows(rt: GpuRuntime, ref: TensorRef, base: GpuView, models: readonly Checkpoint[], code: RowCode, signal?: AbortSignal): Promise<RowsUpload> {
  const n = ref.shape.reduce((a, b) => a * b, 1);
  const rows = createTensorRows(rt, `merge.compressed.${ref.name}`, models.map(() => code), n, 'deltas');
  let bytesRead = 0;
  try {
    for (const [r, m] of models.entries()) {
      throwIfAborted(signal);
      const dtype = floatDtypeOf(m.tensors.get(ref.name)!);
      const bytes = await m.read(ref.name);
      bytesRead += bytes.byteLength;
      if (bytes.byteLength < n * dtypeSize(dtype)) throw new InputError(`${bytes.byteLength} bytes for ${n} ${dtype} elements`, { tensor: ref.storedName });
      for (const c of rows.chunks) {
        if (c.rows.n === 0) continue;
        const size = dtypeSize(dtype);
        const scratch = rt.storage(`merge.compress.${ref.name}`, storageBytes(dtype, c.rows.n));
        try {
          rt.write(scratch, bytes.subarray(c.offset * size, (c.offset + c.rows.n) * size));
          compressRow(rt, { x: { buffer: scratch, dtype }, base: { ...base, offset: (base.offset ?? 0) + c.offset }, rows: c.rows, r });
        } finally {
          rt.release(scratch);
        }
      }
    }
  } catch (error) {
    releaseTensorRows(rt, rows);
    throw error;
  }
  return { rows, bytesRead };
}
