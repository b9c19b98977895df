/**
 * safetensors reader and writer (format: huggingface/safetensors README, "Format").
 *
 * Layout: 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
 * `{"__metadata__": {str: str}?, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}`,
 * then the data section; offsets are relative to the data section. The reader fetches only the
 * prefix and the header, validates every rule the reference implementation enforces (plus
 * duplicate keys, which JSON.parse would drop silently), and reads tensors one byte range at a time.
 */
import { SafetensorsError } from '../errors.ts';
import { dtypeSize, isDType, type DType } from './dtypes.ts';
import type { ByteSource } from './source.ts';

/** The reference implementation's limit on N (safetensors `MAX_HEADER_SIZE`). */
export const MAX_HEADER_LENGTH = 100_000_000;

/**
 * Most tensors one file (and one checkpoint, io/checkpoint.ts) may list. Far above any real
 * checkpoint of a supported family (a 70B Llama has 723 tensors; even a 671B mixture of experts
 * ~100k over 163 shards), and low enough that a crafted header cannot make the reader build
 * millions of entries: with the limits below, parsing costs O(header bytes) and a bounded number
 * of JSON values, checked by a scan before JSON.parse allocates anything.
 */
export const MAX_TENSORS = 100_000;
/** Keys an entry or `__metadata__` may have, elements a shape may have, and the nesting a header can have. */
const MAX_NESTED_KEYS = 10_000;
const MAX_ARRAY = 64;
const MAX_DEPTH = 3;

export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte range relative to the data section (`dataStart`). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  name: string;
  size: number;
  /** N: header bytes after the 8-byte prefix (padding included). */
  headerLength: number;
  /** 8 + N: absolute offset of the data section. */
  dataStart: number;
  metadata: Record<string, string>;
  /** In header order. */
  tensors: TensorEntry[];
}

async function readRange(source: ByteSource, offset: number, length: number, what: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await source.read(offset, length);
  } catch (cause) {
    throw new SafetensorsError(`cannot read ${what} (bytes ${offset}..${offset + length} of ${source.size}): ${cause instanceof Error ? cause.message : String(cause)}`, { file: source.name, cause });
  }
  if (bytes.byteLength !== length) {
    throw new SafetensorsError(`short read of ${what}: got ${bytes.byteLength} of ${length} bytes`, { file: source.name });
  }
  return bytes;
}

/** Reads and validates the header of a .safetensors file; never reads the data section. */
export async function readSafetensorsHeader(source: ByteSource): Promise<SafetensorsFile> {
  const file = source.name;
  const fail = (message: string, tensor?: string): never => {
    throw new SafetensorsError(message, { file, tensor });
  };
  if (!Number.isSafeInteger(source.size) || source.size < 8) fail(`file is ${source.size} bytes, shorter than the 8-byte header length prefix`);
  const prefix = await readRange(source, 0, 8, 'header length prefix');
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const n = high * 2 ** 32 + low;
  if (high !== 0 || n > MAX_HEADER_LENGTH) fail(`header length prefix ${high !== 0 ? `${n} (>= 2^32)` : n} exceeds the ${MAX_HEADER_LENGTH}-byte limit: not a safetensors file or corrupt`);
  if (8 + n > source.size) fail(`header length prefix ${n} runs past the end of the ${source.size}-byte file`);
  if (n < 2) fail(`header length prefix ${n} is too small for a JSON object`);
  const headerBytes = await readRange(source, 8, n, 'header');

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes); // keep a BOM so the '{' check refuses it
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail(`header must start with '{' (got ${JSON.stringify(text.slice(0, 8))})`);
  const shape = headerShapeProblem(text);
  if (shape) fail(shape);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    return fail(`header is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('header JSON is not an object');
  const duplicate = findDuplicateKey(text);
  if (duplicate) {
    if (duplicate.path.length === 0) fail(`duplicate tensor name in header`, duplicate.key);
    else fail(`duplicate key '${duplicate.key}' in header entry`, duplicate.path[0]);
  }

  const dataStart = 8 + n;
  const dataLength = source.size - dataStart;
  // Null prototype: a key named `__proto__` is an ordinary key.
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const tensors: TensorEntry[] = [];
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null) continue;
      if (typeof value !== 'object' || Array.isArray(value)) fail(`__metadata__ must be an object of string -> string`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value for '${k}' must be a string (got ${describe(v)})`);
        metadata[k] = v as string;
      }
      continue;
    }
    tensors.push(parseEntry(name, value, fail));
  }

  // Data must be one gap-free, overlap-free run covering the whole data section.
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const t of sorted) {
    if (t.begin < cursor) fail(`data_offsets [${t.begin}, ${t.end}] overlap the previous tensor (which ends at ${cursor})`, t.name);
    if (t.begin > cursor) fail(`data_offsets [${t.begin}, ${t.end}] leave a gap after byte ${cursor} of the data section`, t.name);
    if (t.end > dataLength) fail(`data_offsets [${t.begin}, ${t.end}] run past the data section (${dataLength} bytes)`, t.name);
    cursor = t.end;
  }
  if (cursor !== dataLength) fail(`tensors cover ${cursor} bytes but the data section is ${dataLength} bytes (file size ${source.size} != ${dataStart} + ${cursor})`);

  return { name: file, size: source.size, headerLength: n, dataStart, metadata, tensors };
}

/**
 * What makes `text` more than a safetensors header can be, found by one string-aware scan before
 * JSON.parse: more than MAX_TENSORS top-level entries, an object of more than MAX_NESTED_KEYS
 * keys, an array of more than MAX_ARRAY elements, or nesting deeper than entry → shape. Malformed
 * JSON is left to JSON.parse to report.
 */
export function headerShapeProblem(text: string): string | undefined {
  const counts: number[] = []; // commas so far in each open container
  const arrays: boolean[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (i < text.length && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c /* \ */ ? 2 : 1;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (counts.length === MAX_DEPTH) return `header nests deeper than a safetensors header can (object → entry → shape) at byte ${i}`;
      counts.push(0);
      arrays.push(c === 0x5b);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      counts.pop();
      arrays.pop();
    } else if (c === 0x2c /* , */ && counts.length) {
      const n = ++counts[counts.length - 1]!;
      const depth = counts.length;
      if (depth === 1 && n >= MAX_TENSORS + 1) return `header lists more than ${MAX_TENSORS} tensors (the most a file may hold here)`;
      if (depth > 1 && arrays[depth - 1] && n >= MAX_ARRAY) return `header has an array of more than ${MAX_ARRAY} elements (a shape has at most ${MAX_ARRAY} dimensions)`;
      if (depth > 1 && !arrays[depth - 1] && n >= MAX_NESTED_KEYS) return `header has an object of more than ${MAX_NESTED_KEYS} keys inside an entry`;
    }
  }
  return undefined;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `"${v.slice(0, 20)}"` : typeof v === 'object' ? 'an object' : String(v);
}

const ENTRY_KEYS = new Set(['dtype', 'shape', 'data_offsets']);

function parseEntry(name: string, value: unknown, fail: (message: string, tensor?: string) => never): TensorEntry {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(`entry must be an object with dtype, shape and data_offsets (got ${describe(value)})`, name);
  const entry = value as Record<string, unknown>;
  for (const key of Object.keys(entry)) if (!ENTRY_KEYS.has(key)) fail(`unknown key '${key}' in entry`, name);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (dtype === undefined) fail('missing dtype', name);
  if (!isDType(dtype)) fail(`unknown dtype ${describe(dtype)}`, name);
  if (!Array.isArray(shape)) fail(`shape must be an array of non-negative integers (got ${describe(shape)})`, name);
  let elements = 1;
  for (const d of shape as unknown[]) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) fail(`shape ${JSON.stringify(shape)} must hold non-negative integers`, name);
    elements *= d as number;
  }
  if (!Array.isArray(offsets) || offsets.length !== 2) fail(`data_offsets must be [begin, end] (got ${JSON.stringify(offsets) ?? 'nothing'})`, name);
  const [begin, end] = offsets as unknown[];
  if (typeof begin !== 'number' || typeof end !== 'number' || !Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < 0) {
    fail(`data_offsets ${JSON.stringify(offsets)} must be non-negative integers`, name);
  }
  const b = begin as number;
  const e = end as number;
  if (b > e) fail(`data_offsets [${b}, ${e}] have begin > end`, name);
  const bytes = elements * dtypeSize(dtype as DType);
  if (!Number.isSafeInteger(bytes)) fail(`shape ${JSON.stringify(shape)} is too large`, name);
  if (e - b !== bytes) fail(`data_offsets [${b}, ${e}] span ${e - b} bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${bytes}`, name);
  return { name, dtype: dtype as DType, shape: [...(shape as number[])], begin: b, end: e };
}

/**
 * The first key that appears twice in one JSON object (`path` names the enclosing keys; empty
 * for the top level). `text` must already be valid JSON.
 */
export function findDuplicateKey(text: string): { key: string; path: string[] } | null {
  interface Frame {
    object: boolean;
    keys: Set<string>;
    expectKey: boolean;
    key: string | null; // the key under which this container sits in its parent
  }
  const stack: Frame[] = [];
  let pendingKey: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i + 1;
      i++;
      while (i < text.length && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.object && top.expectKey) {
        const key = JSON.parse(`"${text.slice(start, i)}"`) as string;
        if (top.keys.has(key)) return { key, path: stack.slice(1).filter((f) => f.object).map((f) => f.key ?? '') };
        top.keys.add(key);
        top.expectKey = false;
        pendingKey = key;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = stack[stack.length - 1];
      stack.push({ object: c === 0x7b, keys: new Set(), expectKey: c === 0x7b, key: parent?.object ? pendingKey : (parent?.key ?? null) });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.object) top.expectKey = true;
    }
  }
  return null;
}

function findEntry(file: SafetensorsFile, name: string): TensorEntry {
  const entry = file.tensors.find((t) => t.name === name);
  if (!entry) throw new SafetensorsError('no such tensor in this file', { file: file.name, tensor: name });
  return entry;
}

/** Reads one tensor's bytes (and nothing else) from a file whose header was read by `readSafetensorsHeader`. */
export async function readTensor(source: ByteSource, file: SafetensorsFile, name: string): Promise<Uint8Array> {
  const entry = findEntry(file, name);
  return readRange(source, file.dataStart + entry.begin, entry.end - entry.begin, `tensor '${name}'`);
}

export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: readonly number[];
}

export interface SafetensorsLayout {
  /** The 8-byte prefix plus the space-padded JSON header: write this first. */
  header: Uint8Array;
  /** Data-section-relative byte ranges in the order to write them (absolute = header.byteLength + begin). */
  offsets: { name: string; begin: number; end: number }[];
  totalSize: number;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Plans a file without holding its data, so an exporter can stream it tensor by tensor.
 * Data order follows the reference writer: larger dtypes first (keeps elements aligned), then by name.
 */
export function safetensorsLayout(entries: readonly TensorSpec[], metadata?: Record<string, string>): SafetensorsLayout {
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.name === '__metadata__') throw new SafetensorsError('__metadata__ is reserved and cannot name a tensor', { tensor: e.name });
    if (seen.has(e.name)) throw new SafetensorsError('duplicate tensor name', { tensor: e.name });
    seen.add(e.name);
    if (!isDType(e.dtype)) throw new SafetensorsError(`unknown dtype ${describe(e.dtype)}`, { tensor: e.name });
    for (const d of e.shape) if (!Number.isSafeInteger(d) || d < 0) throw new SafetensorsError(`shape ${JSON.stringify(e.shape)} must hold non-negative integers`, { tensor: e.name });
  }
  const order = [...entries].sort((a, b) => dtypeSize(b.dtype) - dtypeSize(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const offsets: SafetensorsLayout['offsets'] = [];
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(`__metadata__ value for '${k}' must be a string`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let cursor = 0;
  for (const e of order) {
    const bytes = elementCount(e.shape) * dtypeSize(e.dtype);
    offsets.push({ name: e.name, begin: cursor, end: cursor + bytes });
    // Built by hand: a JS object would move integer-like names ("0") to the front.
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${cursor},${cursor + bytes}]}`);
    cursor += bytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8; // spaces to 8-byte alignment, as the reference does
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  const view = new DataView(header.buffer);
  view.setUint32(0, padded % 2 ** 32, true);
  view.setUint32(4, Math.floor(padded / 2 ** 32), true);
  header.set(json, 8);
  return { header, offsets, totalSize: header.byteLength + cursor };
}

/** A whole .safetensors file in memory (fine for small files; use `safetensorsLayout` to stream big ones). */
export function writeSafetensors(entries: readonly (TensorSpec & { data: Uint8Array })[], metadata?: Record<string, string>): Uint8Array {
  const layout = safetensorsLayout(entries, metadata);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const out = new Uint8Array(layout.totalSize);
  out.set(layout.header, 0);
  for (const o of layout.offsets) {
    const e = byName.get(o.name)!;
    if (e.data.byteLength !== o.end - o.begin) {
      throw new SafetensorsError(`data is ${e.data.byteLength} bytes but shape ${JSON.stringify(e.shape)} of ${e.dtype} needs ${o.end - o.begin}`, { tensor: e.name });
    }
    out.set(e.data, layout.header.byteLength + o.begin);
  }
  return out;
}
