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

export interface FolderSink {
  create(path: string): Promise<FileWriter>;
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

async function writeText(sink: FolderSink, path: string, text: string): Promise<void> {
  const w = await sink.create(path);
  try {
    await w.write(utf8(text));
    await w.close();
  } catch (error) {
    await w.abort();
    throw error;
  }
}

export async function exportMerged(
  sink: FolderSink,
  base: Checkpoint,
  plan: readonly PlannedTensor[],
  tensors: AsyncIterable<MergedTensor>,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const shards = planShards(plan, options.maxShardBytes);
  const metadata = { format: 'pt', ...options.metadata };
  const written: string[] = [];
  const iterator = tensors[Symbol.asyncIterator]();
  let bytes = 0;
  let count = 0;
  for (const shard of shards) {
    const layout = safetensorsLayout(
      shard.tensors.map((t) => ({ name: t.ref.storedName, dtype: t.dtype, shape: t.ref.shape })),
      metadata,
    );
    // The data goes in the layout's order; planMerge already produces tensors in that order.
    const byName = new Map(shard.tensors.map((t) => [t.ref.storedName, t]));
    const order = layout.offsets.map((o) => byName.get(o.name)!);
    const writer = await sink.create(shard.file);
    try {
      await writer.write(layout.header);
      for (const planned of order) {
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
      await iterator.return?.(undefined);
      throw error;
    }
    written.push(shard.file);
  }
  if (shards.length > 1) {
    const weightMap: Record<string, string> = {};
    for (const s of shards) for (const t of s.tensors) weightMap[t.ref.storedName] = s.file;
    const total = shards.reduce((s, x) => s + x.bytes, 0);
    await writeText(sink, INDEX_FILE, JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
    written.push(INDEX_FILE);
  }
  const outDtypes = new Set(plan.flatMap((t) => (t.merged ? [t.dtype] : [])));
  const config = { ...base.config };
  if (outDtypes.size === 1) config.torch_dtype = dtypeName([...outDtypes][0]!);
  await writeText(sink, CONFIG_FILE, JSON.stringify(config, null, 2) + '\n');
  written.push(CONFIG_FILE);
  for (const name of COPIED_FILES) {
    const source = base.files.get(name);
    if (!source) continue;
    const w = await sink.create(name);
    await w.write(await source.read(0, source.size));
    await w.close();
    written.push(name);
  }
  for (const [name, text] of Object.entries(options.extraFiles ?? {})) {
    await writeText(sink, name, text);
    written.push(name);
  }
  return { files: written, tensors: count, bytes };
}
