import { GpuOutOfMemoryError, InputError } from '../errors.ts';
import type { Bindable, GpuRuntime } from '../gpu/runtime.ts';
import { viewBinding, type GpuView } from '../gpu/tensor.ts';
import { dtypeCode, dtypeSize, storageBytes, type FloatDType } from '../io/dtypes.ts';

/**
 * The merge kernels' inputs for one tensor (shaders/common/rows.wgsl): its N rows packed in one
 * buffer per chunk of elements, each row in its own code — the models θ_i in their stored dtype
 * (the lossless residency: Δ = θ_i − θ is formed in f32 inside every kernel, the same
 * subtraction whichever path runs it) or compressed distribution vectors (int8 blocks of 64 with
 * an f32 scale, or a float dtype) for the approximate residency. A tensor whose rows exceed the
 * device's largest binding is split into chunks of whole alignment units; the methods reduce and
 * select across chunks, so no method refuses a tensor by size.
 */
export type RowCode = FloatDType | 'Q8';

/** Elements per Q8 scale (shaders/common/rows.wgsl Q8_BLOCK). */
export const Q8_BLOCK = 64;
const RC_Q8 = 3;

export function rowCodeNumber(code: RowCode): number {
  return code === 'Q8' ? RC_Q8 : dtypeCode(code);
}

/** Bytes per element of a row code (Q8 with its share of the scale). */
export function rowCodeBytes(code: RowCode): number {
  return code === 'Q8' ? 1 + 4 / Q8_BLOCK : dtypeSize(code);
}

/** Where each row of one chunk lives, in u32 words; every row and scale run starts at a 16-byte boundary. */
export interface RowLayout {
  offsets: number[];
  scales: number[];
  words: number;
}

const align4 = (w: number): number => Math.ceil(w / 4) * 4;

export function rowLayout(codes: readonly RowCode[], n: number): RowLayout {
  const offsets: number[] = [];
  const scales: number[] = [];
  let words = 0;
  for (const code of codes) {
    offsets.push(words);
    if (code === 'Q8') {
      const blocks = Math.ceil(n / Q8_BLOCK);
      words += align4(blocks * (Q8_BLOCK / 4));
      scales.push(words);
      words += align4(blocks);
    } else {
      words += align4(storageBytes(code, n) / 4);
      scales.push(0);
    }
  }
  return { offsets, scales, words: Math.max(4, words) };
}

/** One chunk's rows on the GPU. `holds`: the models as stored, or distribution vectors. */
export interface GpuRows {
  buffer: GPUBuffer;
  /** (N) RowInfo {offset, code, scale, 0} of shaders/common/rows.wgsl. */
  info: GPUBuffer;
  codes: readonly RowCode[];
  holds: 'models' | 'deltas';
  /** Elements per row. */
  n: number;
  layout: RowLayout;
}

/** Elements [offset, offset + rows.n) of a tensor. */
export interface RowChunk {
  offset: number;
  rows: GpuRows;
}

/** A tensor's rows: one chunk, or several when they exceed the device's largest binding. */
export interface TensorRows {
  n: number;
  codes: readonly RowCode[];
  holds: 'models' | 'deltas';
  chunks: RowChunk[];
}

type Limits = Pick<GPUSupportedLimits, 'maxBufferSize' | 'maxStorageBufferBindingSize' | 'minStorageBufferOffsetAlignment'>;

/**
 * Chunk lengths are multiples of this: whole Q8 blocks and quads, aligned offsets into
 * F32/F16/BF16 tensors, and whole parts of the reductions (1024 elements per workgroup in
 * merge/dot and sparse's l1), so a chunked tensor's partial sums are the one-piece ones and
 * slerp, model_stock and the L1 rescale give the same bits in chunks.
 */
export const REDUCTION_PART = 1024;

export function chunkUnit(limits: Limits): number {
  return Math.max(REDUCTION_PART, Q8_BLOCK, limits.minStorageBufferOffsetAlignment);
}

/**
 * Elements per chunk of a tensor's rows: all n when they fit one binding, else the most whole
 * units that do (at least one unit; GpuOutOfMemoryError when not even that fits).
 */
export function rowChunkElements(limits: Limits, codes: readonly RowCode[], n: number): number {
  const max = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  if (rowLayout(codes, n).words * 4 <= max) return n;
  const unit = chunkUnit(limits);
  const perElement = codes.reduce((s, c) => s + rowCodeBytes(c), 0);
  // Each row may add up to 32 bytes of alignment (data and scales); keep that aside.
  let size = Math.floor((max - 32 * codes.length) / perElement / unit) * unit;
  while (size > 0 && rowLayout(codes, size).words * 4 > max) size -= unit;
  if (size < 1) throw new GpuOutOfMemoryError(`${codes.length} rows do not fit the device's largest buffer binding (${max} bytes) even in chunks of ${unit} elements`);
  return size;
}

/** The chunks a tensor of n elements is split into: [offset, length] pairs (one empty chunk for n = 0). */
export function chunkRanges(limits: Limits, codes: readonly RowCode[], n: number): [number, number][] {
  const size = Math.max(1, rowChunkElements(limits, codes, n));
  const out: [number, number][] = [];
  for (let offset = 0; offset === 0 || offset < n; offset += size) out.push([offset, Math.min(size, n - offset)]);
  return out;
}

/** GPU bytes a tensor's rows take (all chunks, with their info buffers). */
export function tensorRowsBytes(limits: Limits, codes: readonly RowCode[], n: number): number {
  return chunkRanges(limits, codes, n).reduce((s, [, len]) => s + rowLayout(codes, len).words * 4 + Math.max(16, codes.length * 16), 0);
}

export function createRows(rt: GpuRuntime, label: string, codes: readonly RowCode[], n: number, holds: GpuRows['holds']): GpuRows {
  if (codes.length === 0) throw new InputError('merge rows: no rows');
  const layout = rowLayout(codes, n);
  const info = new Uint32Array(codes.length * 4);
  codes.forEach((code, r) => info.set([layout.offsets[r]!, rowCodeNumber(code), layout.scales[r]!, 0], 4 * r));
  const infoBuffer = rt.upload(`${label}.info`, info);
  try {
    return { buffer: rt.storage(label, layout.words * 4), info: infoBuffer, codes, holds, n, layout };
  } catch (error) {
    rt.release(infoBuffer);
    throw error;
  }
}

/** Allocates every chunk of a tensor's rows (nothing written yet). */
export function createTensorRows(rt: GpuRuntime, label: string, codes: readonly RowCode[], n: number, holds: GpuRows['holds']): TensorRows {
  const out: TensorRows = { n, codes, holds, chunks: [] };
  try {
    for (const [offset, len] of chunkRanges(rt.limits, codes, n)) out.chunks.push({ offset, rows: createRows(rt, `${label}@${offset}`, codes, len, holds) });
  } catch (error) {
    releaseTensorRows(rt, out);
    throw error;
  }
  return out;
}

/**
 * Writes model r's stored bytes (the whole tensor, `code`'s little-endian layout) into every
 * chunk's row r: one model, one tensor in flight at a time.
 */
export function writeTensorRow(rt: GpuRuntime, rows: TensorRows, r: number, bytes: Uint8Array): void {
  const code = rows.codes[r]!;
  if (code === 'Q8') throw new InputError('merge rows: Q8 rows are written by compressRow, not from bytes');
  const size = dtypeSize(code);
  if (bytes.byteLength < rows.n * size) throw new InputError(`merge rows: row ${r} has ${bytes.byteLength} bytes, needs ${rows.n * size}`);
  for (const c of rows.chunks) {
    if (c.rows.n === 0) continue;
    rt.write(c.rows.buffer, bytes.subarray(c.offset * size, (c.offset + c.rows.n) * size), c.rows.layout.offsets[r]! * 4);
  }
}

/**
 * Packs models already on the GPU (separate buffers in their stored dtypes) into rows by buffer
 * copies: what a method does when called with `models` instead of resident rows.
 */
export function packModels(rt: GpuRuntime, models: readonly GpuView[], n: number): TensorRows {
  const codes = models.map((m) => m.dtype);
  const rows = createTensorRows(rt, 'mergeRows.packed', codes, n, 'models');
  const encoder = rt.device.createCommandEncoder({ label: 'mergeRows.pack' });
  for (const c of rows.chunks) {
    if (c.rows.n === 0) continue;
    models.forEach((m, r) => {
      const size = dtypeSize(m.dtype);
      const from = ((m.offset ?? 0) + c.offset) * size;
      const bytes = storageBytes(m.dtype, c.rows.n);
      if (from % 4 !== 0 || from + bytes > m.buffer.size) {
        throw new InputError(`merge rows: elements [${c.offset}, ${c.offset + c.rows.n}) of model ${r} do not fit buffer '${m.buffer.label}'`);
      }
      encoder.copyBufferToBuffer(m.buffer, from, c.rows.buffer, c.rows.layout.offsets[r]! * 4, bytes);
    });
  }
  rt.device.queue.submit([encoder.finish()]);
  return rows;
}

/** GPU bytes a tensor's rows hold now (every chunk's rows and info buffers). */
export function heldRowsBytes(rows: TensorRows | undefined): number {
  return (rows?.chunks ?? []).reduce((n, c) => n + c.rows.buffer.size + c.rows.info.size, 0);
}

export function releaseTensorRows(rt: GpuRuntime, rows: TensorRows | undefined): void {
  for (const c of rows?.chunks ?? []) rt.release(c.rows.buffer, c.rows.info);
  if (rows) rows.chunks = [];
}

/** Bindings [rows, row_info] of a chunk. */
export function rowsBindings(rows: GpuRows): [Bindable, Bindable] {
  return [rows.buffer, rows.info];
}

/** The rows.wgsl overrides: what the rows hold, whether the kernel wants the models themselves, and their shared code. */
export function rowsConstants(rows: GpuRows, raw: boolean): Record<string, number> {
  const shared = rows.codes.every((c) => c === rows.codes[0]) ? rowCodeNumber(rows.codes[0]!) : 255;
  return { HOLDS_DELTAS: rows.holds === 'deltas' ? 1 : 0, WANT_RAW: raw ? 1 : 0, ROW_CODE: shared };
}

/**
 * The base's elements for a chunk (a range binding), or any buffer when the kernel does not read
 * the base (rows of models read raw): the shaders keep binding 0 in their layout either way.
 */
export function baseBinding(base: GpuView | undefined, chunk: RowChunk, what: string): { binding: Bindable; dtype: FloatDType } {
  if (!base) return { binding: chunk.rows.buffer, dtype: 'F32' };
  return { binding: viewBinding({ ...base, offset: (base.offset ?? 0) + chunk.offset }, chunk.rows.n, what), dtype: base.dtype };
}

/** Does a kernel reading these rows need θ (Δ from models, or models from Δ)? */
export function needsBase(rows: Pick<GpuRows, 'holds'>, raw: boolean): boolean {
  return rows.holds === 'deltas' ? raw : !raw;
}
