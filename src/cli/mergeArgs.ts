import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { DemError, InputError, type DemErrorDetails } from '../engine/errors.ts';
import { openCheckpoint, type Checkpoint } from '../engine/io/checkpoint.ts';
import type { MergeJob } from '../engine/merge/execute.ts';
import { parseRecipe, type MergeRecipe } from '../engine/merge/recipe.ts';
import { parseMergekitYaml } from '../engine/merge/yaml.ts';
import { folderFileSet } from '../node/files.ts';

/** The merge options `dem merge`, `dem ppl --base` and `dem generate --base` share. */
export const MERGE_OPTIONS = {
  base: { type: 'string' },
  model: { type: 'string', multiple: true },
  method: { type: 'string' },
  lambda: { type: 'string' },
  density: { type: 'string' },
  gamma: { type: 'string' },
  t: { type: 'string' },
  normalize: { type: 'boolean' },
  seed: { type: 'string' },
  dtype: { type: 'string' },
  config: { type: 'string' },
} as const;

export const MERGE_HELP = `Merge options:
  --base DIR                 base checkpoint (the one the fine-tunes started from)
  --model DIR[:WEIGHT]       a fine-tune and its coefficient ω (default 1); repeat per model
  --method NAME              task_arithmetic (default; DEM), linear, ties, dare_linear, dare_ties,
                             breadcrumbs, slerp
  --lambda X                 scale on Σ ω_i Δ_i (default 1)
  --density X                kept fraction for ties/dare/breadcrumbs
  --gamma X                  breadcrumbs: largest fraction dropped
  --t X                      slerp parameter (0 = base, 1 = the other model)
  --normalize                divide by Σ ω_i
  --seed N                   DARE's random seed (same seed → same merge)
  --dtype f32|f16|bf16       output dtype (default: the base's)
  --config FILE.yml          a mergekit YAML config instead of the options above`;

export interface MergeArgValues {
  base?: string;
  model?: string[];
  method?: string;
  lambda?: string;
  density?: string;
  gamma?: string;
  t?: string;
  normalize?: boolean;
  seed?: string;
  dtype?: string;
  config?: string;
}

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new InputError(`--${name}: '${v}' is not a number`);
  return x;
}

/** `DIR[:WEIGHT]`: a trailing `:number` is the weight (paths may contain ':' elsewhere). */
export function splitModelArg(arg: string): { path: string; weight: number } {
  const m = /^(.*):([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)$/i.exec(arg);
  if (m && m[1]) return { path: m[1], weight: Number(m[2]) };
  return { path: arg, weight: 1 };
}

const DTYPE_NAMES: Record<string, string> = { f32: 'float32', float32: 'float32', f16: 'float16', float16: 'float16', bf16: 'bfloat16', bfloat16: 'bfloat16' };

/** Builds (and validates, through parseRecipe) the recipe the options describe. */
export function recipeFromArgs(v: MergeArgValues): { recipe: MergeRecipe; paths: Map<string, string> } {
  if (v.config) {
    const file = resolve(v.config);
    const recipe = parseMergekitYaml(readFileSync(file, 'utf8'), basename(file));
    const paths = new Map<string, string>();
    // mergekit resolves local model paths against the working directory; fall back to the YAML's folder.
    for (const id of [recipe.base, ...recipe.models.map((m) => m.model)]) {
      paths.set(id, existsSync(resolve(id)) ? resolve(id) : resolve(dirname(file), id));
    }
    return { recipe, paths };
  }
  if (!v.base) throw new InputError('--base DIR is required (or --config FILE.yml)');
  const models = (v.model ?? []).map(splitModelArg);
  if (models.length === 0) throw new InputError('at least one --model DIR[:WEIGHT] is required');
  const dtype = v.dtype === undefined ? undefined : DTYPE_NAMES[v.dtype.toLowerCase()];
  if (v.dtype !== undefined && !dtype) throw new InputError(`--dtype: '${v.dtype}' is not one of f32, f16, bf16`);
  const method = v.method ?? 'task_arithmetic';
  const parameters: Record<string, unknown> = {};
  const set = (k: string, x: unknown): void => {
    if (x !== undefined) parameters[k] = x;
  };
  set('lambda', num('lambda', v.lambda));
  set('density', num('density', v.density));
  set('gamma', num('gamma', v.gamma));
  set('t', num('t', v.t));
  set('seed', num('seed', v.seed));
  if (v.normalize) parameters.normalize = true;
  const json = {
    version: 1,
    method,
    base: v.base,
    models: models.map((m) => ({ model: m.path, parameters: method === 'slerp' ? {} : { weight: m.weight } })),
    parameters,
    ...(dtype ? { dtype } : {}),
  };
  const recipe = parseRecipe(json, 'command line');
  const paths = new Map([v.base, ...models.map((m) => m.path)].map((p) => [p, resolve(p)]));
  return { recipe, paths };
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

/** Opens the base and every model of the recipe (each folder once). */
export async function openJob(recipe: MergeRecipe, paths: ReadonlyMap<string, string>, signal?: AbortSignal): Promise<MergeJob> {
  const cache = new Map<string, Promise<Checkpoint>>();
  const open = (id: string): Promise<Checkpoint> => {
    const path = paths.get(id) ?? resolve(id);
    let p = cache.get(path);
    if (!p) {
      p = folderFileSet(path)
        .then((files) => openCheckpoint(files, basename(path), { signal }))
        .catch((error: unknown) => {
          throw inFolder(error, path);
        });
      cache.set(path, p);
    }
    return p;
  };
  const base = await open(recipe.base);
  const models = await Promise.all(recipe.models.map((m) => open(m.model)));
  return { recipe, base, models };
}
