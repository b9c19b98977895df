import { existsSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { DEFAULT_METHOD, formatBytes, InputError, Workspace, type GpuRuntime, type MergeRecipe, type ModelSpec, type WorkspaceProgress } from '../engine/index.ts';
import { createNodeRuntime } from '../node/gpu.ts';
import { MERGE_ONLY_FLAGS, openRecipe, recipeFromArgs, type MergeArgValues } from './mergeArgs.ts';
import { Progress } from './progress.ts';

/**
 * What `dem ppl` and `dem generate` share: a host's runtime, a Workspace over it, and the model
 * the command line names — one checkpoint (a recipe without models) or a merge made in memory.
 */
export interface CommandEnv {
  /** A GPU runtime the command borrows (not destroyed); default: a fresh Node runtime it owns. */
  runtime?: () => Promise<GpuRuntime>;
  out?: (text: string) => void;
  signal?: AbortSignal;
}

/** The model a command evaluates, opened in a workspace. */
export interface CommandModel {
  /** For output: the folder name, or "merge of BASE (method: …)". */
  name: string;
  spec: ModelSpec;
  /** Checkpoints by the ids the command line gave; `models: []` for a single checkpoint. */
  recipe: MergeRecipe;
  /** True when the command line asked for a merge. */
  merged: boolean;
}

function folder(path: string, what: string): string {
  const full = resolve(path);
  if (!existsSync(full)) throw new InputError(`${what} ${path}: no such folder`);
  return full;
}

/** --model DIR alone, or --base DIR --model DIR[:W] ... / --config FILE.yml for a merge. */
export async function openModel(ws: Workspace, values: MergeArgValues, signal: AbortSignal): Promise<CommandModel> {
  if (values.base !== undefined || values.config !== undefined) {
    const { recipe, paths } = recipeFromArgs(values);
    for (const p of paths.values()) folder(p, 'model');
    await openRecipe(ws, recipe, paths, signal);
    const base = ws.checkpoint(recipe.base);
    const models = recipe.models.map((m) => `${basename(m.model)}${m.parameters.weight === undefined ? '' : `:${String(m.parameters.weight)}`}`);
    return { name: `merge of ${base.name} (${recipe.method}: ${models.join(', ')})`, spec: base.spec, recipe, merged: true };
  }
  const extra = MERGE_ONLY_FLAGS.filter((k) => values[k] !== undefined);
  if (extra.length) throw new InputError(`${extra.map((k) => `--${k}`).join(', ')} only apply to a merge: add --base DIR`);
  const models = values.model ?? [];
  if (models.length !== 1) throw new InputError(models.length === 0 ? '--model DIR is required' : `${models.length} --model folders given: evaluate one, or merge them with --base DIR`);
  const dir = folder(models[0]!, '--model');
  const recipe: MergeRecipe = { version: 1, method: DEFAULT_METHOD, base: models[0]!, models: [], parameters: {} };
  await openRecipe(ws, recipe, new Map([[models[0]!, dir]]), signal);
  const ckpt = ws.checkpoint(recipe.base);
  return { name: ckpt.name, spec: ckpt.spec, recipe, merged: false };
}

export function readTextFile(path: string): string {
  try {
    return readFileSync(resolve(path), 'utf8');
  } catch (cause) {
    const code = cause instanceof Error && 'code' in cause ? String(cause.code) : '';
    throw new InputError(code === 'ENOENT' ? 'no such file' : `cannot read: ${cause instanceof Error ? cause.message : String(cause)}`, { file: path, cause });
  }
}

export function parseIntOption(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < min) throw new InputError(`--${name}: '${v}' is not an integer ≥ ${min}`);
  return x;
}

/**
 * Runs `work` with a Workspace over the host's runtime or a fresh one (created on first GPU use,
 * destroyed after: the command owns it).
 */
export async function withWorkspace<T>(
  env: CommandEnv,
  options: { label: string; resident?: boolean; memoryBudget?: number },
  work: (ws: Workspace, runtime: () => Promise<GpuRuntime>) => Promise<T>,
): Promise<T> {
  let owned: Promise<GpuRuntime> | undefined;
  const runtime = env.runtime ?? (() => (owned ??= createNodeRuntime({ label: options.label, memoryBudget: options.memoryBudget })));
  try {
    return await work(new Workspace({ runtime, resident: options.resident }), runtime);
  } finally {
    if (owned) (await owned.catch(() => undefined))?.destroy();
  }
}

/** Progress lines on stderr for a workspace's loading/merging (then `done` with what is on the GPU). */
export function loadProgress(quiet: boolean | undefined, merged: boolean): (p: WorkspaceProgress) => void {
  let bar: Progress | undefined;
  return (p) => {
    if (p.stage === 'windows' || p.stage === 'items') return;
    if (p.stage === 'ready') {
      (bar ?? new Progress(merged ? 'merge' : 'load', quiet)).done(`${p.tensors} tensors, ${formatBytes(p.bytes)} on the GPU`);
      bar = undefined;
      return;
    }
    bar ??= new Progress(p.stage, quiet);
    bar.update(p.done, p.total, p.tensor);
  };
}

export function stdout(text: string): void {
  process.stdout.write(text);
}
