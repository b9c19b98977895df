import { existsSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import {
  ADAPTER_CONFIG_FILE,
  allParams,
  DEFAULT_METHOD,
  DemError,
  dtypeFromName,
  dtypeName,
  getMethod,
  InputError,
  isMethodName,
  methodNames,
  MAX_YAML_CHARS,
  methodsTaking,
  parseMergekitYaml,
  parseRecipe,
  usesWeights,
  WEIGHT,
  type DemErrorDetails,
  type MergeRecipe,
  type ParamSpec,
  type Workspace,
} from '../engine/index.ts';
import { folderFileSet, readTextFileBounded } from '../node/files.ts';
import { findInHubCache, hubCacheDir, looksLikeHubId } from '../node/hfCache.ts';
import { wrap } from './format.ts';

/** One flag per merge parameter any method declares (ω is given per model as DIR:WEIGHT). */
const PARAM_FLAGS = allParams()
  .filter((p) => p.name !== WEIGHT)
  .sort((a, b) => Number(a.scope === 'global') - Number(b.scope === 'global'));

/** The merge options `dem merge`, `dem ppl --base` and `dem generate --base` share. */
const FIXED_OPTIONS = {
  base: { type: 'string' },
  model: { type: 'string', multiple: true },
  method: { type: 'string' },
  dtype: { type: 'string' },
  config: { type: 'string' },
} as const;
export const MERGE_OPTIONS: typeof FIXED_OPTIONS & Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
  ...FIXED_OPTIONS,
  ...Object.fromEntries(PARAM_FLAGS.map((p) => [p.name, { type: p.type === 'boolean' ? ('boolean' as const) : ('string' as const) }])),
};

/** Flags that only mean something for a merge (with --base or --config). */
export const MERGE_ONLY_FLAGS: readonly string[] = ['method', 'dtype', ...PARAM_FLAGS.map((p) => p.name)];

const column = (left: string, right: string): string => `  ${left.padEnd(25)}  ${right}`;

function paramHelp(p: ParamSpec): string {
  if (p.type === 'choice') return choiceHelp(p.name);
  const flag = p.type === 'boolean' ? `--${p.name}` : `--${p.name} ${p.type === 'integer' ? 'N' : 'X'}`;
  const def = p.type === 'boolean' ? `; --no-${p.name} turns it off` : p.default === undefined ? '' : `; default ${String(p.default)}`;
  return column(flag, wrap(`${p.description.replace(/\.$/, '')}${def} (${methodsTaking(p.name).join(', ')})`, 68, 29));
}

/** A choice parameter: methods may offer different choices and defaults (DARE's rescale), so each group is listed. */
function choiceHelp(name: string): string {
  const groups = new Map<string, { spec: ParamSpec; methods: string[] }>();
  for (const m of methodsTaking(name)) {
    const spec = getMethod(m).params.find((q) => q.name === name)!;
    const key = `${spec.description}|${String(spec.default)}`;
    const g = groups.get(key) ?? { spec, methods: [] };
    g.methods.push(m);
    groups.set(key, g);
  }
  const text = [...groups.values()].map(({ spec, methods }) => `${methods.join(', ')}: ${spec.description.replace(/\.$/, '')}; default ${String(spec.default)}.`).join(' ');
  return column(`--${name} NAME`, wrap(text, 68, 29));
}

export const MERGE_HELP = [
  'Merge options:',
  column('--base DIR', 'base checkpoint (the one the fine-tunes started from)'),
  column('--model DIR[:WEIGHT]', 'a fine-tune and its coefficient ω (default 1); repeat per model'),
  column('--method NAME', wrap(`${methodNames().join(', ')} (default ${DEFAULT_METHOD}: DEM)`, 68, 29)),
  ...PARAM_FLAGS.map(paramHelp),
  column('--dtype f32|f16|bf16', "output dtype (default: the base's)"),
  column('--config FILE.yml', 'a mergekit YAML config instead of the options above'),
].join('\n');

export type MergeArgValues = {
  base?: string;
  model?: string[];
  method?: string;
  dtype?: string;
  config?: string;
} & Record<string, string | boolean | string[] | undefined>;

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new InputError(`--${name}: '${v}' is not a number`);
  return x;
}

/** `DIR[:WEIGHT]`: a trailing `:number` is the weight (paths may contain ':' elsewhere). */
export function splitModelArg(arg: string): { path: string; weight?: number } {
  const m = /^(.*):([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)$/i.exec(arg);
  if (m && m[1]) return { path: m[1], weight: Number(m[2]) };
  return { path: arg };
}


/** The parameter flags given on the command line, by parameter name. */
export function givenParams(v: MergeArgValues): Record<string, number | boolean | string> {
  const out: Record<string, number | boolean | string> = {};
  for (const p of PARAM_FLAGS) {
    const raw = v[p.name];
    if (raw === undefined) continue;
    // A choice is passed as given: parseRecipe checks it against the chosen method's choices.
    out[p.name] = p.type === 'boolean' ? raw === true : p.type === 'choice' ? (raw as string) : num(p.name, raw as string)!;
  }
  return out;
}

/**
 * The folder a recipe's checkpoint id names: a folder relative to the working directory (as
 * mergekit resolves it), else to the YAML's folder (where dem merge's exported YAML points),
 * else a hub id's snapshot in the local Hugging Face cache. An id that can only be a hub id and
 * is not cached is refused here; a path that does not exist is left to the caller's message.
 */
export function checkpointPath(id: string, yamlDir?: string): string {
  if (existsSync(resolve(id))) return resolve(id);
  if (yamlDir !== undefined && existsSync(resolve(yamlDir, id))) return resolve(yamlDir, id);
  if (!looksLikeHubId(id)) return yamlDir === undefined ? resolve(id) : resolve(yamlDir, id);
  const cache = hubCacheDir();
  const snapshot = findInHubCache(id, cache);
  if (snapshot) return snapshot;
  const where = [resolve(id), ...(yamlDir === undefined ? [] : [resolve(yamlDir, id)])].join(', ');
  throw new InputError(`'${id}' is not a folder (${where}) and not in the local Hugging Face cache (looked in ${cache}; set HF_HUB_CACHE or HF_HOME to another cache)`);
}

/** Builds (and validates, through parseRecipe) the recipe the options describe. */
export function recipeFromArgs(v: MergeArgValues): { recipe: MergeRecipe; paths: Map<string, string> } {
  if (v.config) {
    const file = resolve(v.config);
    const recipe = parseMergekitYaml(readTextFileBounded(file, MAX_YAML_CHARS, v.config, 'a mergekit config'), basename(file));
    const paths = new Map<string, string>();
    // mergekit resolves local model paths against the working directory; then the YAML's folder, then the Hugging Face cache.
    const local = (id: string): string => checkpointPath(id, dirname(file));
    for (const id of [recipe.base, ...recipe.models.map((m) => m.model)]) {
      const ref = modelReference(id);
      if (ref.adapter !== undefined) paths.set(ref.model, local(ref.model));
      paths.set(id, local(ref.adapter ?? id));
    }
    return { recipe, paths };
  }
  if (!v.base) throw new InputError('--base DIR is required (or --config FILE.yml)');
  const models = (v.model ?? []).map(splitModelArg);
  if (models.length === 0) throw new InputError('at least one --model DIR[:WEIGHT] is required');
  const out = v.dtype === undefined ? undefined : dtypeFromName(v.dtype);
  const dtype = out && dtypeName(out);
  if (v.dtype !== undefined && !dtype) throw new InputError(`--dtype: '${v.dtype}' is not one of f32, f16, bf16`);
  const method = v.method ?? DEFAULT_METHOD;
  const parameters = givenParams(v);
  // A bare DIR is weight 1 where the method takes weights; nothing where it does not.
  const weighted = !isMethodName(method) || usesWeights(getMethod(method));
  // A LoRA adapter folder is the model BASE+ADAPTER (mergekit's syntax: the adapter over the base).
  const ids = new Map(models.map((m) => [m.path, isAdapterDir(m.path) ? `${v.base}+${m.path}` : m.path]));
  const json = {
    version: 1,
    method,
    base: v.base,
    models: models.map((m) => ({ model: ids.get(m.path)!, parameters: m.weight !== undefined || weighted ? { [WEIGHT]: m.weight ?? 1 } : {} })),
    parameters,
    ...(dtype ? { dtype } : {}),
  };
  const recipe = parseRecipe(json, 'command line');
  const paths = new Map([v.base, ...models.map((m) => m.path)].map((p) => [ids.get(p) ?? p, checkpointPath(p)]));
  return { recipe, paths };
}

function isAdapterDir(path: string): boolean {
  return existsSync(join(resolve(path), ADAPTER_CONFIG_FILE));
}

/**
 * mergekit's model reference: `MODEL+ADAPTER` is the LoRA adapter ADAPTER applied over MODEL
 * (split at the last '+', unless the whole string is a folder); anything else is a folder.
 */
export function modelReference(id: string): { model: string; adapter?: string } {
  const at = id.lastIndexOf('+');
  if (at <= 0 || at === id.length - 1 || existsSync(resolve(id))) return { model: id };
  return { model: id.slice(0, at), adapter: id.slice(at + 1) };
}

/**
 * The same DemError with its file as a path under `folder`: every checkpoint has a
 * model.safetensors, so the bare name would not say which one is broken.
 */
function inFolder(error: unknown, folder: string): unknown {
  if (!(error instanceof DemError) || error.constructor === DemError || !error.file || isAbsolute(error.file)) return error;
  const where = [error.file, error.tensor && `tensor '${error.tensor}'`].filter(Boolean).join(', ') + ': ';
  const message = error.message.startsWith(where) ? error.message.slice(where.length) : error.message;
  const Kind = error.constructor as new (message: string, details: DemErrorDetails) => DemError;
  return new Kind(message, { file: join(folder, error.file), tensor: error.tensor, cause: error });
}

/** Opens the recipe's base and models into the workspace, keyed by the recipe's ids (each folder once). */
export async function openRecipe(ws: Workspace, recipe: MergeRecipe, paths: ReadonlyMap<string, string>, signal?: AbortSignal): Promise<void> {
  const ids = [...new Set([recipe.base, ...recipe.models.map((m) => m.model)])];
  const opened = new Set<string>();
  const open = async (id: string, path: string, base?: string): Promise<void> => {
    if (opened.has(id)) return;
    try {
      await ws.open(id, basename(path), await folderFileSet(path), { signal, base });
    } catch (error) {
      throw inFolder(error, path);
    }
    opened.add(id);
  };
  for (const id of ids) {
    const ref = modelReference(id);
    if (ref.adapter === undefined) {
      await open(id, paths.get(id) ?? resolve(id));
    } else {
      await open(ref.model, paths.get(ref.model) ?? resolve(ref.model));
      await open(id, paths.get(id) ?? resolve(ref.adapter), ref.model);
    }
  }
}
