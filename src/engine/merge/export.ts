import type { Checkpoint } from '../io/checkpoint.ts';
import { CONFIG_FILE, INDEX_FILE, SINGLE_WEIGHTS_FILE } from '../io/checkpoint.ts';
import { dtypeName } from '../io/dtypes.ts';
import { safetensorsLayout } from '../io/safetensors.ts';
import { InputError } from '../errors.ts';
import type { MergedTensor, PlannedTensor } from './execute.ts';

/**
 * Writes a merged checkpoint as a Hugging Face folder while the merge streams: the layout (shard
 * assignment, headers) is computed from the plan first, then each tensor's bytes go straight to
 * its shard. Hosts supply the sink: Node files (src/node/sink.ts), the File System Access API or
 * a zip in the browser.
 */
export interface FileWriter {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
  /** Removes the partial file. */
  abort(): Promise<void>;
}

/** What an export will write, known before any GPU work: every file and its exact size. */
export interface ExportPlan {
  files: { path: string; bytes: number }[];
  bytes: number;
}

/**
 * Where an export goes. The optional steps make it one transaction: `begin` (before any GPU work,
 * with the exact sizes: check room and permission, set up a temporary place), `create` per file,
 * then `commit` (make the whole export visible under its final name at once) or `abort` (remove
 * everything written). A host that cannot do better still gets `config.json` last, so a folder
 * cut short never loads as a checkpoint.
 */
export interface FolderSink {
  begin?(plan: ExportPlan): Promise<void>;
  create(path: string): Promise<FileWriter>;
  commit?(): Promise<void>;
  /** Idempotent; also called when `begin` itself failed. */
  abort?(): Promise<void>;
}

/** HF's default `max_shard_size` ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/**
 * Files copied byte for byte from the base when present: the tokenizer, its settings (BOS, chat
 * template inside tokenizer_config.json), the chat template files newer transformers write beside
 * it, and generation settings.
 */
export const COPIED_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
  'chat_template.jinja',
  'chat_template.json',
  'generation_config.json',
];


export interface ShardPlan {
  file: string;
  tensors: PlannedTensor[];
  bytes: number;
}

export function planShards(plan: readonly PlannedTensor[], maxShardBytes = DEFAULT_MAX_SHARD_BYTES): ShardPlan[] {
  const groups: PlannedTensor[][] = [[]];
  let size = 0;
  for (const t of plan) {
    if (size > 0 && size + t.byteLength > maxShardBytes) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1]!.push(t);
    size += t.byteLength;
  }
  const n = groups.length;
  const pad = (i: number): string => String(i).padStart(5, '0');
  return groups.map((tensors, i) => ({
    file: n === 1 ? SINGLE_WEIGHTS_FILE : `model-${pad(i + 1)}-of-${pad(n)}.safetensors`,
    tensors,
    bytes: tensors.reduce((s, t) => s + t.byteLength, 0),
  }));
}

export interface ExportOptions {
  maxShardBytes?: number;
  /** Extra text files written beside the weights, e.g. {'dem-recipe.json': …, 'mergekit_config.yml': …}. */
  extraFiles?: Record<string, string>;
  metadata?: Record<string, string>;
}

export interface ExportResult {
  files: string[];
  tensors: number;
  bytes: number;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Everything an export writes, laid out before the merge starts (headers, index, texts, copies). */
export interface ExportLayout {
  plan: ExportPlan;
  shards: (ShardPlan & { header: Uint8Array; order: PlannedTensor[] })[];
  /** Small files in writing order, config.json last (it is what makes a folder loadable). */
  texts: { path: string; data: Uint8Array | (() => Promise<Uint8Array>) }[];
}

/** Lays out an export of `plan` (planMerge's order) from `base`: shard headers, index, config, copied and extra files. */
export function layoutExport(base: Checkpoint, plan: readonly PlannedTensor[], options: ExportOptions = {}): ExportLayout {
  const metadata = { format: 'pt', ...options.metadata };
  const shards = planShards(plan, options.maxShardBytes).map((shard) => {
    const layout = safetensorsLayout(
      shard.tensors.map((t) => ({ name: t.ref.storedName, dtype: t.dtype, shape: t.ref.shape })),
      metadata,
    );
    // The data goes in the layout's order; planMerge already produces tensors in that order.
    const byName = new Map(shard.tensors.map((t) => [t.ref.storedName, t]));
    return { ...shard, header: layout.header, order: layout.offsets.map((o) => byName.get(o.name)!) };
  });
  const texts: ExportLayout['texts'] = [];
  const sizes: ExportPlan['files'] = shards.map((s) => ({ path: s.file, bytes: s.header.byteLength + s.bytes }));
  if (shards.length > 1) {
    // A null-prototype map: a tensor named `__proto__` is an ordinary key here.
    const weightMap: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const s of shards) for (const t of s.tensors) weightMap[t.ref.storedName] = s.file;
    const total = shards.reduce((sum, x) => sum + x.bytes, 0);
    texts.push({ path: INDEX_FILE, data: utf8(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n') });
  }
  for (const name of COPIED_FILES) {
    const source = base.files.get(name);
    if (source) texts.push({ path: name, data: () => source.read(0, source.size) });
    if (source) sizes.push({ path: name, bytes: source.size });
  }
  for (const [name, text] of Object.entries(options.extraFiles ?? {})) texts.push({ path: name, data: utf8(text) });
  const outDtypes = new Set(plan.flatMap((t) => (t.merged ? [t.dtype] : [])));
  const config = { ...base.config };
  if (outDtypes.size === 1) {
    // The key(s) the base uses: transformers wrote torch_dtype, and from 4.56 writes dtype.
    const keys = ['torch_dtype', 'dtype'].filter((k) => k in base.config);
    for (const key of keys.length ? keys : ['torch_dtype']) config[key] = dtypeName([...outDtypes][0]!);
  }
  texts.push({ path: CONFIG_FILE, data: utf8(JSON.stringify(config, null, 2) + '\n') });
  for (const t of texts) if (t.data instanceof Uint8Array) sizes.push({ path: t.path, bytes: t.data.byteLength });
  return { plan: { files: sizes, bytes: sizes.reduce((sum, f) => sum + f.bytes, 0) }, shards, texts };
}

async function writeFile(sink: FolderSink, path: string, data: Uint8Array): Promise<void> {
  const w = await sink.create(path);
  try {
    await w.write(data);
    await w.close();
  } catch (error) {
    await w.abort();
    throw error;
  }
}

/** Writes a laid-out export as the merge streams in (no begin/commit: see exportMerged). */
export async function writeExport(sink: FolderSink, layout: ExportLayout, tensors: AsyncIterable<MergedTensor>): Promise<ExportResult> {
  const written: string[] = [];
  const iterator = tensors[Symbol.asyncIterator]();
  let bytes = 0;
  let count = 0;
  try {
    for (const shard of layout.shards) {
      const writer = await sink.create(shard.file);
      try {
        await writer.write(shard.header);
        for (const planned of shard.order) {
          const next = await iterator.next();
          if (next.done) throw new InputError(`merge ended before tensor '${planned.ref.storedName}'`);
          const t = next.value;
          if (t.ref.name !== planned.ref.name || !t.data || t.data.byteLength !== planned.byteLength) {
            throw new InputError(`merge produced '${t.ref.storedName}' (${t.data?.byteLength ?? 0} bytes) where '${planned.ref.storedName}' (${planned.byteLength} bytes) was planned`);
          }
          await writer.write(t.data);
          bytes += t.data.byteLength;
          count++;
        }
        await writer.close();
      } catch (error) {
        await writer.abort();
        throw error;
      }
      written.push(shard.file);
    }
    // The stream's own end: a merge finishes its checks there (execute.ts).
    const end = await iterator.next();
    if (!end.done) throw new InputError(`merge produced '${end.value.ref.storedName}' after the last planned tensor`);
  } catch (error) {
    await iterator.return?.(undefined);
    throw error;
  }
  for (const t of layout.texts) {
    await writeFile(sink, t.path, t.data instanceof Uint8Array ? t.data : await t.data());
    written.push(t.path);
  }
  return { files: written, tensors: count, bytes };
}

/**
 * One export as a transaction over the sink: begin (with the plan's sizes), write, commit; on any
 * failure or cancellation the sink aborts and the error is rethrown. `tensors` is consumed only
 * after `begin` succeeded: a lazy stream (streamMerge) does no GPU work for a refused export.
 */
export async function exportMerged(
  sink: FolderSink,
  base: Checkpoint,
  plan: readonly PlannedTensor[],
  tensors: AsyncIterable<MergedTensor> | (() => Promise<AsyncIterable<MergedTensor>>),
  options: ExportOptions = {},
): Promise<ExportResult> {
  const layout = layoutExport(base, plan, options);
  try {
    await sink.begin?.(layout.plan);
    const result = await writeExport(sink, layout, typeof tensors === 'function' ? await tensors() : tensors);
    await sink.commit?.();
    return result;
  } catch (error) {
    await sink.abort?.().catch(() => undefined);
    throw error;
  }
}
