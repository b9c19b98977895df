/**
 * A Hugging Face checkpoint folder opened lazily: config.json, then model.safetensors or
 * model.safetensors.index.json + shards (headers only), optional tokenizer.json and
 * tokenizer_config.json. Tensor bytes
 * are read one tensor at a time through `Checkpoint.read`.
 */
import { ConfigError, IncompatibleCheckpointError, InputError, SafetensorsError, TokenizerError, throwIfAborted } from '../errors.ts';
import { parseConfig } from './config.ts';
import type { DType } from './dtypes.ts';
import { readSafetensorsHeader, type SafetensorsFile } from './safetensors.ts';
import type { ByteSource, FileSet } from './source.ts';
import type { ModelSpec } from './spec.ts';
import type { WeightRole } from './roles.ts';
import { canonicalName, classifyTensor, expectedTensors, layerOf, roleOf, type TensorKind } from './weights.ts';

export const CONFIG_FILE = 'config.json';
export const SINGLE_WEIGHTS_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

export interface TensorRef {
  /** Canonical name (see weights.ts). */
  name: string;
  /** Name as stored in the file (e.g. with GPT-2's `transformer.` prefix). */
  storedName: string;
  dtype: DType;
  shape: number[];
  /** Path of the .safetensors file in the FileSet. */
  file: string;
  /** Absolute byte offset in `file`. */
  begin: number;
  byteLength: number;
  kind: TensorKind | 'unknown';
  layer: number | null;
  /** What the forward pass reads it as (architecture table); absent for buffers and unknown tensors. */
  role?: WeightRole;
}

export interface Checkpoint {
  name: string;
  spec: ModelSpec;
  /** config.json as parsed JSON (exporters copy it). */
  config: Record<string, unknown>;
  files: FileSet;
  /** Canonical name -> tensor; expected tensors in model order first, then unknown ones. */
  tensors: Map<string, TensorRef>;
  /** safetensors `__metadata__` (merged over shards). */
  metadata: Record<string, string>;
  sharded: boolean;
  /** The .safetensors files holding the weights, sorted by name. */
  weightFiles: string[];
  tokenizerJson?: unknown;
  /** tokenizer_config.json (add_bos_token, bos_token, chat_template, ...), when the folder has one. */
  tokenizerConfig?: Record<string, unknown>;
  /** One tensor's bytes (canonical or stored name), read lazily. */
  read(name: string): Promise<Uint8Array>;
}

export interface OpenOptions {
  signal?: AbortSignal;
}

async function readJson(source: ByteSource, onError: (message: string, cause: unknown) => Error): Promise<unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await source.read(0, source.size));
  } catch (cause) {
    throw onError(`cannot read as UTF-8 text: ${cause instanceof Error ? cause.message : String(cause)}`, cause);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw onError(`not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`, cause);
  }
}

function defaultName(config: Record<string, unknown>): string {
  const path = config._name_or_path;
  if (typeof path === 'string' && path.trim()) return path.split('/').filter(Boolean).pop() ?? path;
  return 'checkpoint';
}

/** Resolves a shard path from the index (relative to the index's folder, which is the root here). */
function shardPath(path: string): string {
  return path.replace(/^\.\//, '');
}

interface WeightLayout {
  headers: Map<string, SafetensorsFile>; // file path -> header
  sharded: boolean;
}

async function readWeightLayout(files: FileSet, signal: AbortSignal | undefined): Promise<WeightLayout> {
  const single = files.get(SINGLE_WEIGHTS_FILE);
  if (single) return { headers: new Map([[SINGLE_WEIGHTS_FILE, await readSafetensorsHeader(single)]]), sharded: false };
  const indexSource = files.get(INDEX_FILE);
  if (!indexSource) {
    const bin = [...files.keys()].some((k) => k.endsWith('.bin') || k.endsWith('.pt') || k.endsWith('.pth'));
    throw new SafetensorsError(
      `no weights found: expected ${SINGLE_WEIGHTS_FILE} or ${INDEX_FILE}` + (bin ? ' (PyTorch .bin/.pt checkpoints are not supported; save with safe_serialization=True)' : ''),
      { file: SINGLE_WEIGHTS_FILE },
    );
  }
  const index = await readJson(indexSource, (m, cause) => new SafetensorsError(m, { file: INDEX_FILE, cause }));
  const weightMap = typeof index === 'object' && index !== null && !Array.isArray(index) ? (index as Record<string, unknown>).weight_map : undefined;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new SafetensorsError(`must contain "weight_map": {tensor name: shard file}`, { file: INDEX_FILE });
  }
  const problems: string[] = [];
  const byShard = new Map<string, Set<string>>();
  for (const [tensor, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== 'string') {
      problems.push(`weight_map entry for '${tensor}' is not a file name`);
      continue;
    }
    const path = shardPath(shard);
    if (!byShard.has(path)) byShard.set(path, new Set());
    byShard.get(path)!.add(tensor);
  }
  const missingShards = [...byShard.keys()].filter((p) => !files.has(p));
  if (missingShards.length) problems.push(`shard file${missingShards.length > 1 ? 's' : ''} listed in weight_map but not in the folder: ${missingShards.join(', ')}`);
  if (problems.length) throw new SafetensorsError(problems.join('; '), { file: INDEX_FILE });

  const headers = new Map<string, SafetensorsFile>();
  for (const [path, listed] of [...byShard].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    throwIfAborted(signal);
    const header = await readSafetensorsHeader(files.get(path)!);
    headers.set(path, header);
    const stored = new Set(header.tensors.map((t) => t.name));
    const notInShard = [...listed].filter((t) => !stored.has(t));
    const notInIndex = [...stored].filter((t) => !listed.has(t));
    if (notInShard.length) problems.push(`${path} lacks ${notInShard.length} tensor(s) that ${INDEX_FILE} places there: ${preview(notInShard)}`);
    if (notInIndex.length) problems.push(`${path} holds ${notInIndex.length} tensor(s) that ${INDEX_FILE} does not place there: ${preview(notInIndex)}`);
  }
  if (problems.length) throw new SafetensorsError(`index and shards disagree: ${problems.join('; ')}`, { file: INDEX_FILE });
  return { headers, sharded: true };
}

function preview(names: string[], max = 8): string {
  return names.slice(0, max).join(', ') + (names.length > max ? `, ... (${names.length - max} more)` : '');
}

/** Opens a checkpoint folder: reads config and headers only, validates names and shapes against the spec. */
export async function openCheckpoint(files: FileSet, name?: string, options: OpenOptions = {}): Promise<Checkpoint> {
  const { signal } = options;
  const configSource = files.get(CONFIG_FILE);
  if (!configSource) throw new ConfigError('missing: a Hugging Face checkpoint folder needs config.json next to its weights', { file: CONFIG_FILE });
  const configJson = await readJson(configSource, (m, cause) => new ConfigError(m, { file: CONFIG_FILE, cause }));
  const spec = parseConfig(configJson, CONFIG_FILE);
  const config = configJson as Record<string, unknown>;
  throwIfAborted(signal);

  const { headers, sharded } = await readWeightLayout(files, signal);
  throwIfAborted(signal);

  const found = new Map<string, TensorRef>();
  const problems: string[] = [];
  const metadata: Record<string, string> = {};
  for (const [path, header] of headers) {
    for (const [k, v] of Object.entries(header.metadata)) if (!(k in metadata)) metadata[k] = v;
    for (const t of header.tensors) {
      const canonical = canonicalName(spec.family, t.name);
      const previous = found.get(canonical);
      if (previous) {
        problems.push(`'${t.name}' in ${path} and '${previous.storedName}' in ${previous.file} are the same tensor '${canonical}'`);
        continue;
      }
      const ref: TensorRef = {
        name: canonical,
        storedName: t.name,
        dtype: t.dtype,
        shape: t.shape,
        file: path,
        begin: header.dataStart + t.begin,
        byteLength: t.end - t.begin,
        kind: classifyTensor(spec.family, canonical),
        layer: layerOf(spec.family, canonical),
      };
      const role = roleOf(spec.family, canonical);
      if (role !== null) ref.role = role;
      found.set(canonical, ref);
    }
  }

  // Expected tensors in model order first, then whatever else the files hold.
  const tensors = new Map<string, TensorRef>();
  for (const e of expectedTensors(spec)) {
    const t = found.get(e.name);
    if (!t) {
      if (!e.optional) problems.push(`missing ${e.name} [${e.shape.join(', ')}]`);
      continue;
    }
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      problems.push(`${e.name}: shape [${t.shape.join(', ')}] in ${t.file}, expected [${e.shape.join(', ')}] from config.json`);
    }
    tensors.set(e.name, t);
  }
  for (const [k, t] of found) {
    if (tensors.has(k)) continue;
    // Matches a template the spec rules out (e.g. a Llama q bias without attention_bias) or is foreign.
    if (t.kind !== 'unknown' && t.layer !== null && t.layer >= spec.numLayers) {
      problems.push(`${t.storedName} in ${t.file} belongs to layer ${t.layer}, but config.json has ${spec.numLayers} layers`);
    }
    const { role: _, ...rest } = t;
    tensors.set(k, { ...rest, kind: 'unknown' });
  }
  if (problems.length) {
    throw new IncompatibleCheckpointError(`checkpoint does not match its config.json (${spec.modelType}): ${problems.length} problem(s): ${problems.join('; ')}`, {
      file: sharded ? INDEX_FILE : SINGLE_WEIGHTS_FILE,
    });
  }

  let tokenizerJson: unknown;
  const tokenizerSource = files.get(TOKENIZER_FILE);
  if (tokenizerSource) tokenizerJson = await readJson(tokenizerSource, (m, cause) => new TokenizerError(m, { file: TOKENIZER_FILE, cause }));
  let tokenizerConfig: unknown;
  const tokenizerConfigSource = files.get(TOKENIZER_CONFIG_FILE);
  if (tokenizerConfigSource) {
    tokenizerConfig = await readJson(tokenizerConfigSource, (m, cause) => new TokenizerError(m, { file: TOKENIZER_CONFIG_FILE, cause }));
    if (typeof tokenizerConfig !== 'object' || tokenizerConfig === null || Array.isArray(tokenizerConfig)) throw new TokenizerError('must be a JSON object', { file: TOKENIZER_CONFIG_FILE });
  }

  const byStored = new Map([...tensors.values()].map((t) => [t.storedName, t]));
  const checkpointName = name ?? defaultName(config);
  const ckpt: Checkpoint = {
    name: checkpointName,
    spec,
    config,
    files,
    tensors,
    metadata,
    sharded,
    weightFiles: [...headers.keys()],
    async read(tensorName: string): Promise<Uint8Array> {
      const t = tensors.get(tensorName) ?? byStored.get(tensorName);
      if (!t) throw new InputError(`no such tensor in checkpoint '${checkpointName}'`, { tensor: tensorName });
      const source = files.get(t.file)!;
      let bytes: Uint8Array;
      try {
        bytes = await source.read(t.begin, t.byteLength);
      } catch (cause) {
        throw new SafetensorsError(`cannot read tensor bytes: ${cause instanceof Error ? cause.message : String(cause)}`, { file: t.file, tensor: t.name, cause });
      }
      if (bytes.byteLength !== t.byteLength) throw new SafetensorsError(`short read: ${bytes.byteLength} of ${t.byteLength} bytes`, { file: t.file, tensor: t.name });
      return bytes;
    },
  };
  if (tokenizerJson !== undefined) ckpt.tokenizerJson = tokenizerJson;
  if (tokenizerConfig !== undefined) ckpt.tokenizerConfig = tokenizerConfig as Record<string, unknown>;
  return ckpt;
}
