/**
 * PEFT LoRA adapters (a folder with adapter_config.json + adapter_model.safetensors) as
 * distribution vectors. On disk (PEFT's save_pretrained), per adapted module M of the wrapped
 * model: `base_model.model.M.lora_A.weight` (r, in) and `base_model.model.M.lora_B.weight`
 * (out, r); per module in modules_to_save (and biases when `bias` is not "none") the whole
 * tensor under `base_model.model.M.weight` / `.bias`. The update of M's weight is
 *   Δ = s · B A,  s = lora_alpha / r  (use_rslora: lora_alpha / √r),
 * r and lora_alpha from rank_pattern / alpha_pattern when a key matches M (PEFT's rule: the key
 * is M or a dotted suffix of it, as a regex). `layers_to_transform` (with `layers_pattern`, the
 * name before the index) restricts the adapted modules to those layer indices, PEFT's rule
 * (`layerIndex`); factors the file holds for a module PEFT would not adapt are refused by name. A base that stores the matrix (in, out) — GPT-2's
 * Conv1D, PEFT's fan_in_fan_out — gets Δᵀ; PEFT forces fan_in_fan_out on for Conv1D and off for
 * nn.Linear whatever the config says, so the base's layout decides here too.
 *
 * `openAdapter` reads the config and the header (no base needed); `bindAdapter` maps the modules
 * onto a base checkpoint's tensors and gives a Checkpoint whose tensors are the adapted model's:
 * θ + Δ (formed in float64, stored F32) for targets, the replacement for modules_to_save, the
 * base's own elsewhere — so every method, the layer view and perplexity take it like a full
 * fine-tune — and keeps the factors (`Checkpoint.adapter`) for the paths that use them directly.
 */
import { ConfigError, IncompatibleCheckpointError, InputError, SafetensorsError } from '../errors.ts';
import type { Checkpoint, TensorRef } from './checkpoint.ts';
import { decodeToF32, isFloatDType, type FloatDType } from './dtypes.ts';
import { isBlockRole } from './roles.ts';
import { readSafetensorsHeader } from './safetensors.ts';
import type { ByteSource, FileSet } from './source.ts';
import { architecture, canonicalName } from './weights.ts';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** PEFT's wrapper prefix: PeftModel.base_model (LoraModel).model (the transformers model). */
export const PEFT_PREFIX = 'base_model.model.';

/** A tensor of the adapter file. */
export interface AdapterTensor {
  /** Key in adapter_model.safetensors. */
  key: string;
  dtype: FloatDType;
  shape: number[];
  /** Absolute byte range in adapter_model.safetensors. */
  begin: number;
  byteLength: number;
}

/** One adapted matrix. */
export interface LoraTarget {
  /** Module path M (the key without PEFT's prefix and `.lora_A.weight`). */
  module: string;
  /** (r, in) and (out, r). */
  a: AdapterTensor;
  b: AdapterTensor;
  rank: number;
  alpha: number;
  /** s = alpha / r, or alpha / √r with rsLoRA. */
  scale: number;
}

/** The adapter as read, before it meets a base. */
export interface LoraAdapter {
  name: string;
  files: FileSet;
  config: Record<string, unknown>;
  r: number;
  alpha: number;
  rslora: boolean;
  /** target_modules: names (a module matches one when it is it or ends with '.' + it), or one regex. */
  targetModules: string[] | string | null;
  modulesToSave: string[];
  /** layers_to_transform: the only layer indices adapted (null: every layer). */
  layersToTransform: number[] | null;
  /** layers_pattern: the module names an index follows (null: any, PEFT's default). */
  layersPattern: string[] | null;
  targets: LoraTarget[];
  /** Whole tensors (modules_to_save, biases) by their path without PEFT's prefix. */
  replacements: AdapterTensor[];
}

/** A target bound to a base tensor. */
export interface BoundLoraTarget extends LoraTarget {
  /** The base tensor's canonical name. */
  tensor: string;
  /** The base stores the matrix (in, out) (Conv1D): Δ = s · (B A)ᵀ. */
  transposed: boolean;
  /** (out, in) of the update as B A gives it. */
  out: number;
  in: number;
}

/** What an adapter-backed Checkpoint carries beside its dense view. */
export interface AdapterBinding {
  adapter: LoraAdapter;
  base: Checkpoint;
  /** By the base tensor's canonical name. */
  targets: Map<string, BoundLoraTarget>;
  /** Canonical base names replaced whole. */
  replaced: Set<string>;
  /** One factor's bytes. */
  read(t: AdapterTensor): Promise<Uint8Array>;
}

export function isAdapterFolder(files: FileSet): boolean {
  return files.has(ADAPTER_CONFIG_FILE);
}

function fail(message: string): never {
  throw new ConfigError(message, { file: ADAPTER_CONFIG_FILE });
}

/** PEFT's pattern lookup (rank_pattern, alpha_pattern): the first key K with M matching `(.*\.)?(K)$`. */
export function patternValue(patterns: Record<string, number>, module: string, fallback: number): number {
  for (const [key, value] of Object.entries(patterns)) {
    let re: RegExp;
    try {
      re = new RegExp(`^(.*\\.)?(${key})$`);
    } catch {
      fail(`pattern '${key}' is not a valid regular expression`);
    }
    if (re.test(module)) return value;
  }
  return fallback;
}

/** Whether module M is one of target_modules (PEFT: a list matches M or a dotted suffix; a string is a full-match regex). */
export function matchesTarget(targets: string[] | string, module: string): boolean {
  if (typeof targets === 'string') {
    if (targets === 'all-linear') return true;
    return new RegExp(`^(?:${targets})$`).test(module);
  }
  return targets.some((t) => module === t || module.endsWith(`.${t}`));
}

/**
 * The layer index of module path M as PEFT finds it for layers_to_transform: the number after
 * one of `patterns` (a regex each, e.g. `layers`, `h`), or after any name when there are none,
 * between dots, the last such place in M (`model.layers.3.self_attn.q_proj` → 3); undefined when
 * M has none.
 */
export function layerIndex(module: string, patterns: readonly string[] | null): number | undefined {
  for (const pattern of patterns ?? ['[^.]*']) {
    let re: RegExp;
    try {
      re = new RegExp(`^.*\\.(?:${pattern})\\.(?<index>\\d+)\\.`);
    } catch {
      fail(`layers_pattern '${pattern}' is not a valid regular expression`);
    }
    const m = re.exec(module);
    if (m) return Number(m.groups!.index);
  }
  return undefined;
}

/** layers_to_transform and layers_pattern as PEFT's LoraConfig takes them (an empty one is none), checked. */
function layerSelection(config: Record<string, unknown>, targetModules: unknown): { layers: number[] | null; patterns: string[] | null } {
  const lt = config.layers_to_transform;
  const index = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  if (!(lt === undefined || lt === null || index(lt) || (Array.isArray(lt) && lt.every(index)))) {
    fail(`layers_to_transform is ${JSON.stringify(lt)}, expected a layer index or a list of them`);
  }
  const layers = lt === undefined || lt === null ? null : Array.isArray(lt) ? (lt.length ? (lt as number[]) : null) : [lt];
  const lp = config.layers_pattern;
  if (!(lp === undefined || lp === null || typeof lp === 'string' || (Array.isArray(lp) && lp.every((x) => typeof x === 'string')))) {
    fail(`layers_pattern is ${JSON.stringify(lp)}, expected a module name or a list of them`);
  }
  const patterns = lp === undefined || lp === null || lp === '' ? null : typeof lp === 'string' ? [lp] : lp.length ? (lp as string[]) : null;
  if (patterns && !layers) fail('layers_pattern is set without layers_to_transform (PEFT refuses this config too)');
  if (layers && typeof targetModules === 'string') fail('layers_to_transform is set with target_modules as one regex, which PEFT refuses: list the module names instead');
  return { layers, patterns };
}

/**
 * Why PEFT would not adapt module M under layers_to_transform (undefined when it would): a name
 * listed in target_modules is adapted whatever its layer, a dotted-suffix match only in the
 * listed layers. (Without a layer selection, target_modules is checked against the base.)
 */
function describeUnadapted(adapter: Pick<LoraAdapter, 'targetModules' | 'layersToTransform' | 'layersPattern'>, module: string): string | undefined {
  const tm = adapter.targetModules;
  const layers = adapter.layersToTransform;
  if (!layers || !Array.isArray(tm) || tm.includes(module) || !matchesTarget(tm, module)) return undefined;
  const i = layerIndex(module, adapter.layersPattern);
  if (i !== undefined && layers.includes(i)) return undefined;
  const where = i === undefined ? `has no layer index${adapter.layersPattern ? ` after ${adapter.layersPattern.map((p) => `'${p}'`).join(' or ')}` : ''}` : `is in layer ${i}`;
  return `${module} has factors but ${where}, and layers_to_transform is [${layers.join(', ')}] (PEFT would not adapt it)`;
}

function numberRecord(config: Record<string, unknown>, field: string): Record<string, number> {
  const v = config[field];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) fail(`${field} must be an object {pattern: number}`);
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) fail(`${field}['${k}'] is ${JSON.stringify(x)}, expected a positive number`);
  }
  return v as Record<string, number>;
}

async function readJson(source: ByteSource): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await source.read(0, source.size)));
  } catch (cause) {
    throw new ConfigError(`not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`, { file: ADAPTER_CONFIG_FILE, cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('must be a JSON object');
  return value as Record<string, unknown>;
}

const LORA_KEY = /^(.*)\.lora_([AB])(?:\.[A-Za-z0-9_-]+)?\.weight$/;

/** Reads adapter_config.json and the header of adapter_model.safetensors; refuses what is not a plain LoRA. */
export async function openAdapter(files: FileSet, name: string): Promise<LoraAdapter> {
  const configSource = files.get(ADAPTER_CONFIG_FILE);
  if (!configSource) fail('missing: a PEFT adapter folder needs adapter_config.json next to adapter_model.safetensors');
  const config = await readJson(configSource);
  const peftType = config.peft_type;
  if (peftType !== 'LORA') fail(`peft_type is ${JSON.stringify(peftType)}: only LoRA adapters ("LORA") can be read`);
  if (config.use_dora === true) fail('use_dora is true: DoRA adapters (a learned magnitude per output) are not supported, only plain LoRA');
  const r = config.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) fail(`r is ${JSON.stringify(r)}, expected a positive integer`);
  const alpha = config.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) fail(`lora_alpha is ${JSON.stringify(alpha)}, expected a number`);
  const rslora = config.use_rslora === true;
  const rankPattern = numberRecord(config, 'rank_pattern');
  const alphaPattern = numberRecord(config, 'alpha_pattern');
  const tm = config.target_modules;
  if (!(tm === undefined || tm === null || typeof tm === 'string' || (Array.isArray(tm) && tm.every((t) => typeof t === 'string')))) {
    fail(`target_modules is ${JSON.stringify(tm)}, expected a list of module names or a regex`);
  }
  const { layers, patterns } = layerSelection(config, tm);
  const mts = config.modules_to_save;
  if (!(mts === undefined || mts === null || (Array.isArray(mts) && mts.every((t) => typeof t === 'string')))) fail(`modules_to_save is ${JSON.stringify(mts)}, expected a list of module names`);

  const weights = files.get(ADAPTER_WEIGHTS_FILE);
  if (!weights) {
    const bin = files.has('adapter_model.bin');
    throw new SafetensorsError(`missing: expected ${ADAPTER_WEIGHTS_FILE}` + (bin ? ' (adapter_model.bin is not supported; save with safe_serialization=True)' : ''), { file: ADAPTER_WEIGHTS_FILE });
  }
  const header = await readSafetensorsHeader(weights);
  const pairs = new Map<string, { a?: AdapterTensor; b?: AdapterTensor }>();
  const replacements: AdapterTensor[] = [];
  const problems: string[] = [];
  for (const t of header.tensors) {
    const path = t.name.startsWith(PEFT_PREFIX) ? t.name.slice(PEFT_PREFIX.length) : t.name;
    if (/\.lora_magnitude_vector\b/.test(t.name)) {
      throw new ConfigError(`'${t.name}' is a DoRA magnitude vector: DoRA adapters are not supported, only plain LoRA`, { file: ADAPTER_WEIGHTS_FILE });
    }
    if (/\.lora_embedding_[AB]\b/.test(t.name)) {
      throw new SafetensorsError(`'${t.name}': LoRA on embeddings is not supported (only on weight matrices)`, { file: ADAPTER_WEIGHTS_FILE });
    }
    if (!isFloatDType(t.dtype)) {
      problems.push(`${t.name} has dtype ${t.dtype} (F32, F16 or BF16)`);
      continue;
    }
    const ref: AdapterTensor = { key: t.name, dtype: t.dtype, shape: t.shape, begin: header.dataStart + t.begin, byteLength: t.end - t.begin };
    const m = LORA_KEY.exec(path);
    if (m) {
      const module = m[1]!;
      const pair = pairs.get(module) ?? {};
      pair[m[2] === 'A' ? 'a' : 'b'] = ref;
      pairs.set(module, pair);
    } else if (/\.lora_/.test(path)) {
      problems.push(`${t.name} is not a lora_A / lora_B weight`);
    } else {
      replacements.push(ref);
    }
  }
  const targets: LoraTarget[] = [];
  for (const [module, { a, b }] of pairs) {
    if (!a || !b) {
      problems.push(`${module} has lora_${a ? 'A' : 'B'} but no lora_${a ? 'B' : 'A'}`);
      continue;
    }
    const rank = patternValue(rankPattern, module, r);
    const al = patternValue(alphaPattern, module, alpha);
    if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[0] !== rank || b.shape[1] !== rank) {
      problems.push(`${module}: lora_A [${a.shape.join(', ')}] and lora_B [${b.shape.join(', ')}] do not have rank ${rank} (r or rank_pattern in ${ADAPTER_CONFIG_FILE})`);
      continue;
    }
    const unadapted = describeUnadapted({ targetModules: (tm ?? null) as string[] | string | null, layersToTransform: layers, layersPattern: patterns }, module);
    if (unadapted) {
      problems.push(unadapted);
      continue;
    }
    targets.push({ module, a, b, rank, alpha: al, scale: rslora ? al / Math.sqrt(rank) : al / rank });
  }
  if (problems.length) throw new SafetensorsError(`${problems.length} problem(s): ${problems.join('; ')}`, { file: ADAPTER_WEIGHTS_FILE });
  if (targets.length === 0 && replacements.length === 0) throw new SafetensorsError('holds no lora_A / lora_B weights', { file: ADAPTER_WEIGHTS_FILE });
  return {
    name,
    files,
    config,
    r,
    alpha,
    rslora,
    targetModules: tm === undefined || tm === null ? null : (tm as string[] | string),
    modulesToSave: (mts as string[] | null | undefined) ?? [],
    layersToTransform: layers,
    layersPattern: patterns,
    targets,
    replacements,
  };
}

/** The module of a base tensor name as the wrapped model names it (stored names: GPT-2 keeps `transformer.`). */
function moduleOf(storedName: string): string {
  return storedName.replace(/\.(weight|bias)$/, '');
}

/**
 * The adapter applied to `base`: every target and replacement mapped onto a base tensor by name
 * (both through the family's canonical names, so `transformer.`-prefixed and bare GPT-2 names
 * meet), shapes checked; anything that does not fit is an IncompatibleCheckpointError listing
 * every problem by name.
 */
export function bindAdapter(adapter: LoraAdapter, base: Checkpoint): Checkpoint {
  const family = base.spec.family;
  const layout = architecture(family).layout;
  const problems: string[] = [];
  const targets = new Map<string, BoundLoraTarget>();
  for (const t of adapter.targets) {
    const tensor = canonicalName(family, `${t.module}.weight`);
    const ref = base.tensors.get(tensor);
    if (!ref || ref.kind !== 'param') {
      problems.push(`${t.module}: base '${base.name}' has no weight ${t.module}.weight`);
      continue;
    }
    const transposed = layout === 'conv1d' && ref.role !== undefined && isBlockRole(ref.role) && ref.shape.length === 2;
    const [out, inn] = transposed ? [ref.shape[1], ref.shape[0]] : [ref.shape[0], ref.shape[1]];
    if (ref.shape.length !== 2 || t.a.shape[1] !== inn || t.b.shape[0] !== out) {
      problems.push(
        `${t.module}: lora_B [${t.b.shape.join(', ')}] · lora_A [${t.a.shape.join(', ')}] does not fit base ${ref.storedName} [${ref.shape.join(', ')}]` +
          (transposed ? ' (Conv1D, stored (in, out))' : ''),
      );
      continue;
    }
    targets.set(tensor, { ...t, tensor, transposed, out: out!, in: inn! });
  }
  const replaced = new Map<string, AdapterTensor>();
  for (const r of adapter.replacements) {
    const path = r.key.startsWith(PEFT_PREFIX) ? r.key.slice(PEFT_PREFIX.length) : r.key;
    const tensor = canonicalName(family, path);
    const ref = base.tensors.get(tensor);
    if (!ref) {
      problems.push(`${r.key}: base '${base.name}' has no tensor ${path}`);
      continue;
    }
    if (ref.shape.length !== r.shape.length || ref.shape.some((d, i) => d !== r.shape[i])) {
      problems.push(`${r.key}: shape [${r.shape.join(', ')}] differs from base ${ref.storedName} [${ref.shape.join(', ')}]`);
      continue;
    }
    if (targets.has(tensor)) problems.push(`${r.key} is both adapted and replaced`);
    replaced.set(tensor, r);
  }
  // target_modules entries that name nothing in the base (a config for another architecture).
  const modules = [...base.tensors.values()].filter((t) => t.kind === 'param' && t.shape.length === 2).map((t) => moduleOf(t.storedName));
  const tm = adapter.targetModules;
  if (Array.isArray(tm)) {
    for (const name of tm) if (!modules.some((m) => matchesTarget([name], m))) problems.push(`target_modules entry '${name}' matches no module of base '${base.name}'`);
  }
  for (const t of targets.values()) {
    if (tm !== null && !matchesTarget(tm, moduleOf(base.tensors.get(t.tensor)!.storedName)) && !matchesTarget(tm, t.module)) {
      problems.push(`${t.module} has factors but is not in target_modules ${JSON.stringify(tm)}`);
    }
  }
  if (problems.length) {
    throw new IncompatibleCheckpointError(`adapter '${adapter.name}' does not fit base '${base.name}' (${base.spec.modelType}): ${problems.length} problem(s): ${problems.join('; ')}`, {
      file: ADAPTER_WEIGHTS_FILE,
    });
  }

  const weights = adapter.files.get(ADAPTER_WEIGHTS_FILE)!;
  const readFactor = async (t: AdapterTensor): Promise<Uint8Array> => {
    let bytes: Uint8Array;
    try {
      bytes = await weights.read(t.begin, t.byteLength);
    } catch (cause) {
      throw new SafetensorsError(`cannot read tensor bytes: ${cause instanceof Error ? cause.message : String(cause)}`, { file: ADAPTER_WEIGHTS_FILE, tensor: t.key, cause });
    }
    if (bytes.byteLength !== t.byteLength) throw new SafetensorsError(`short read: ${bytes.byteLength} of ${t.byteLength} bytes`, { file: ADAPTER_WEIGHTS_FILE, tensor: t.key });
    return bytes;
  };

  const tensors = new Map<string, TensorRef>();
  for (const [name, ref] of base.tensors) {
    const target = targets.get(name);
    const rep = replaced.get(name);
    if (target) tensors.set(name, { ...ref, dtype: 'F32', file: ADAPTER_WEIGHTS_FILE, begin: 0, byteLength: ref.shape.reduce((x, y) => x * y, 1) * 4 });
    else if (rep) tensors.set(name, { ...ref, dtype: rep.dtype, file: ADAPTER_WEIGHTS_FILE, begin: rep.begin, byteLength: rep.byteLength });
    else tensors.set(name, ref);
  }
  const binding: AdapterBinding = { adapter, base, targets, replaced: new Set(replaced.keys()), read: readFactor };
  const byStored = new Map([...tensors.values()].map((t) => [t.storedName, t]));
  return {
    name: adapter.name,
    spec: base.spec,
    config: base.config,
    files: adapter.files,
    tensors,
    metadata: {},
    sharded: false,
    weightFiles: [ADAPTER_WEIGHTS_FILE],
    ...(base.tokenizerJson === undefined ? {} : { tokenizerJson: base.tokenizerJson }),
    ...(base.tokenizerConfig === undefined ? {} : { tokenizerConfig: base.tokenizerConfig }),
    adapter: binding,
    async read(tensorName: string): Promise<Uint8Array> {
      const ref = tensors.get(tensorName) ?? byStored.get(tensorName);
      if (!ref) throw new InputError(`no such tensor in adapter '${adapter.name}'`, { tensor: tensorName });
      const target = targets.get(ref.name);
      if (target) return new Uint8Array(new Float32Array(await adaptedWeights(binding, target)).buffer);
      const rep = replaced.get(ref.name);
      if (rep) return readFactor(rep);
      return base.read(ref.name);
    },
  };
}

/** s · B A (out, in) in float64, transposed to the base's (in, out) when `transposed`. */
export function loraDelta(a: ArrayLike<number>, b: ArrayLike<number>, rank: number, out: number, inn: number, scale: number, transposed: boolean): Float64Array {
  const d = new Float64Array(out * inn);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inn; i++) {
      let s = 0;
      for (let k = 0; k < rank; k++) s += b[o * rank + k]! * a[k * inn + i]!;
      d[transposed ? i * out + o : o * inn + i] = scale * s;
    }
  }
  return d;
}

/** θ + Δ of one target, float64 (the dense view's values before rounding to F32). */
export async function adaptedWeights(binding: AdapterBinding, target: BoundLoraTarget): Promise<Float64Array> {
  const baseRef = binding.base.tensors.get(target.tensor)!;
  const theta = decodeToF32(await binding.base.read(target.tensor), baseRef.dtype);
  const a = decodeToF32(await binding.read(target.a), target.a.dtype);
  const b = decodeToF32(await binding.read(target.b), target.b.dtype);
  const d = loraDelta(a, b, target.rank, target.out, target.in, target.scale, target.transposed);
  for (let i = 0; i < d.length; i++) d[i]! += theta[i]!;
  return d;
}
