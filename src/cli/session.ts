import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { ADAPTER_CONFIG_FILE, DEFAULT_METHOD, formatBytes, InputError, MAX_TEXT_BYTES, Workspace, type GpuRuntime, type MergeRecipe, type ModelSpec, type WorkspaceProgress } from '../engine/index.ts';
import { readTextFileBounded } from '../node/files.ts';
import { createNodeRuntime } from '../node/gpu.ts';
import type { Disk } from '../node/sink.ts';
import { checkpointPath, MERGE_ONLY_FLAGS, modelReference, openRecipe, recipeFromArgs, type MergeArgValues } from './mergeArgs.ts';
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
  /** The file-system calls `dem merge` writes its output with (tests stand in a full or read-only disk). */
  disk?: Partial<Disk>;
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
  const id = models[0]!;
  const ref = modelReference(id);
  const paths = new Map<string, string>();
  if (ref.adapter === undefined) {
    const dir = folder(checkpointPath(id), '--model');
    if (existsSync(join(dir, ADAPTER_CONFIG_FILE))) throw new InputError(`--model ${id} is a LoRA adapter: give the model it applies to, --base DIR --model ${id} or --model BASE+${id}`);
    paths.set(id, dir);
  } else {
    paths.set(ref.model, folder(checkpointPath(ref.model), '--model'));
    paths.set(id, folder(checkpointPath(ref.adapter), '--model'));
  }
  const recipe: MergeRecipe = { version: 1, method: DEFAULT_METHOD, base: id, models: [], parameters: {} };
  await openRecipe(ws, recipe, paths, signal);
  const ckpt = ws.checkpoint(recipe.base);
  return { name: ckpt.name, spec: ckpt.spec, recipe, merged: false };
}

/** A --text file: a regular file of at most MAX_TEXT_BYTES, read in chunks (node/files.ts). */
export function readTextFile(path: string): string {
  return readTextFileBounded(resolve(path), MAX_TEXT_BYTES, path, 'a text');
}

/** Integer options are at most 2³¹ − 1 unless a smaller `max` is given (a seed: 2³² − 1). */
export function parseIntOption(name: string, v: string | undefined, min: number, max = 2 ** 31 - 1): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < min) throw new InputError(`--${name}: '${v}' is not an integer ≥ ${min}`);
  if (x > max) throw new InputError(`--${name}: '${v}' is more than ${max}`);
  return x;
}

/**
 * Runs `work` with a Workspace over the host's runtime or a fresh one (created on first GPU use,
 * destroyed after: the command owns it). `peakBytes()`: the most GPU memory this command held at
 * once, from the runtime's count of every buffer (on a borrowed runtime, above what it already held).
 */
export async function withWorkspace<T>(
  env: CommandEnv,
  options: { label: string; resident?: boolean; compressed?: boolean; memoryBudget?: number },
  work: (ws: Workspace, runtime: () => Promise<GpuRuntime>, peakBytes: () => Promise<number>) => Promise<T>,
): Promise<T> {
  let owned: Promise<GpuRuntime> | undefined;
  let started: Promise<{ rt: GpuRuntime; before: number }> | undefined;
  const start = (): Promise<{ rt: GpuRuntime; before: number }> =>
    (started ??= (env.runtime ? env.runtime() : (owned = createNodeRuntime({ label: options.label, memoryBudget: options.memoryBudget }))).then((rt) => {
      rt.resetPeak();
      return { rt, before: rt.memory.live };
    }));
  const runtime = async (): Promise<GpuRuntime> => (await start()).rt;
  const peakBytes = async (): Promise<number> => {
    const { rt, before } = await start();
    return rt.memory.peak - before;
  };
  try {
    return await work(new Workspace({ runtime, resident: options.resident, compressed: options.compressed }), runtime, peakBytes);
  } finally {
    if (owned) (await owned.catch(() => undefined))?.destroy();
  }
}

/** Progress lines on stderr for a workspace's loading/merging (the memory plan first, then `done` with what is on the GPU). */
export function loadProgress(quiet: boolean | undefined, merged: boolean): (p: WorkspaceProgress) => void {
  let bar: Progress | undefined;
  return (p) => {
    if (p.stage === 'windows' || p.stage === 'items') return;
    if (p.stage === 'plan') {
      if (!quiet) process.stderr.write(`${p.plan.lines.join('\n')}\n`);
      return;
    }
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
