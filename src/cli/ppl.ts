import { existsSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError, TokenizerError } from '../engine/errors.ts';
import type { GpuRuntime } from '../engine/gpu/runtime.ts';
import { openCheckpoint, TOKENIZER_FILE, type Checkpoint } from '../engine/io/checkpoint.ts';
import type { ModelSpec } from '../engine/io/spec.ts';
import { loadTokenizer, type TextTokenizer } from '../engine/io/tokenizer.ts';
import { streamMerge } from '../engine/merge/execute.ts';
import { recipeToJson, type MergeRecipe } from '../engine/merge/recipe.ts';
import { checkContext, defaultContext, evaluateTexts, tokenizeTexts, type TextPerplexity } from '../engine/model/evaluate.ts';
import { collectMerged, createLoadedModel, uploadCheckpoint, type GpuWeights } from '../engine/model/load.ts';
import { folderFileSet } from '../node/files.ts';
import { createNodeRuntime } from '../node/gpu.ts';
import { formatBytes } from '../engine/index.ts';
import { table } from './format.ts';
import { MERGE_HELP, MERGE_OPTIONS, openJob, recipeFromArgs, type MergeArgValues } from './mergeArgs.ts';
import { cancelOnSignals, Progress } from './progress.ts';

const HELP = `dem ppl --model DIR --text FILE [--text FILE ...] [--context N] [--json]
dem ppl --base DIR --model DIR[:WEIGHT] ... [merge options] --text FILE ...

Validation perplexity per text on the GPU: the text is encoded without
special tokens and split into consecutive windows of --context tokens (the last may be shorter);
each window predicts its tokens 1..n-1; ppl = exp(total NLL / predicted tokens).
With --base, the model is the merge the options describe, computed on the GPU and evaluated in
memory (nothing is written); the --model folders are then the fine-tunes.

Options:
  --model DIR                the checkpoint to evaluate (without --base)
  --text FILE                a validation text (UTF-8); repeat for several
  --context N                window length (default: min(model positions, 1024))
  --batch N                  windows per GPU dispatch (default 8)
  --json                     print the results as JSON
  --quiet                    no progress lines on stderr

${MERGE_HELP}`;

/** What a command needs from its host; tests pass their own runtime, output and signal. */
export interface CommandEnv {
  /** A GPU runtime the command borrows (not destroyed); default: a fresh Node runtime it owns. */
  runtime?: () => Promise<GpuRuntime>;
  out?: (text: string) => void;
  signal?: AbortSignal;
}

/** The model a command evaluates: one checkpoint, or a merge done on the GPU at load time. */
export interface ModelSource {
  /** For output: the folder name, or "merge of BASE" */
  name: string;
  spec: ModelSpec;
  tokenizer: TextTokenizer;
  recipe?: MergeRecipe;
  load(rt: GpuRuntime, progress: Progress, signal: AbortSignal): Promise<GpuWeights>;
}

type SourceArgs = MergeArgValues & { quiet?: boolean };

const MERGE_ONLY: (keyof MergeArgValues)[] = ['method', 'lambda', 'density', 'gamma', 't', 'normalize', 'dtype'];

function folder(path: string, what: string): string {
  const full = resolve(path);
  if (!existsSync(full)) throw new InputError(`${what} ${path}: no such folder`);
  return full;
}

async function tokenizerOf(ckpt: Checkpoint, dir: string): Promise<TextTokenizer> {
  if (ckpt.tokenizerJson === undefined) throw new TokenizerError(`missing in ${dir}: perplexity and generation need the model's tokenizer`, { file: TOKENIZER_FILE });
  return loadTokenizer(ckpt.tokenizerJson, `${basename(dir)}/${TOKENIZER_FILE}`);
}

/** --model DIR alone, or --base DIR --model DIR[:W] ... / --config FILE.yml for a merge. */
export async function openModelSource(values: SourceArgs, signal: AbortSignal): Promise<ModelSource> {
  if (values.base !== undefined || values.config !== undefined) {
    const { recipe, paths } = recipeFromArgs(values);
    for (const p of paths.values()) folder(p, 'model');
    const job = await openJob(recipe, paths, signal);
    const tokenizer = await tokenizerOf(job.base, paths.get(recipe.base) ?? recipe.base);
    return {
      name: `merge of ${job.base.name} (${recipe.method}: ${recipe.models.map((m) => `${basename(m.model)}${m.parameters.weight === undefined ? '' : `:${String(m.parameters.weight)}`}`).join(', ')})`,
      spec: job.base.spec,
      tokenizer,
      recipe,
      load: (rt, progress, sig) =>
        collectMerged(rt, job.base.spec, streamMerge(rt, job, { output: 'gpu', signal: sig, onProgress: (p) => progress.update(p.done, p.total, p.tensor) }), { signal: sig }),
    };
  }
  const extra = MERGE_ONLY.filter((k) => values[k] !== undefined);
  if (extra.length) throw new InputError(`${extra.map((k) => `--${k}`).join(', ')} only apply to a merge: add --base DIR`);
  const models = values.model ?? [];
  if (models.length !== 1) throw new InputError(models.length === 0 ? '--model DIR is required' : `${models.length} --model folders given: evaluate one, or merge them with --base DIR`);
  const dir = folder(models[0]!, '--model');
  const ckpt = await openCheckpoint(await folderFileSet(dir), basename(dir), { signal });
  return {
    name: ckpt.name,
    spec: ckpt.spec,
    tokenizer: await tokenizerOf(ckpt, dir),
    load: (rt, progress, sig) => uploadCheckpoint(rt, ckpt, { signal: sig, onProgress: (p) => progress.update(p.done, p.total, p.tensor) }),
  };
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

/** Runs `work` with the host's runtime or a fresh one, destroying only what it created. */
export async function withRuntime<T>(env: CommandEnv, label: string, work: (rt: GpuRuntime) => Promise<T>): Promise<T> {
  const rt = env.runtime ? await env.runtime() : await createNodeRuntime({ label });
  try {
    return await work(rt);
  } finally {
    if (!env.runtime) rt.destroy();
  }
}

export function stdout(text: string): void {
  process.stdout.write(text);
}

export function pplJson(r: TextPerplexity): Record<string, unknown> {
  return { text: r.label, tokens: r.tokens, predicted: r.predicted, context: r.context, nll_sum: r.nllSum, nll_mean: r.nllMean, ppl: r.ppl, ids_head: r.idsHead };
}

export async function runPpl(args: string[], env: CommandEnv = {}): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...MERGE_OPTIONS,
      text: { type: 'string', multiple: true },
      context: { type: 'string' },
      batch: { type: 'string' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const out = env.out ?? stdout;
  if (values.help) {
    out(`${HELP}\n`);
    return 0;
  }
  const signal = env.signal ?? cancelOnSignals();
  if (!values.text?.length) throw new InputError('at least one --text FILE is required');
  const source = await openModelSource(values, signal);
  const context = checkContext(source.spec, parseIntOption('context', values.context, 2) ?? defaultContext(source.spec));
  const batch = parseIntOption('batch', values.batch, 1) ?? 8;
  // Encode every text before touching the GPU: an empty or missing file fails in milliseconds.
  const texts = tokenizeTexts(
    source.tokenizer,
    values.text.map((path) => ({ label: path, text: readTextFile(path) })),
  );

  const results = await withRuntime(env, 'dem-ppl', async (rt) => {
    const loadProgress = new Progress(source.recipe ? 'merge' : 'load', values.quiet);
    const weights = await source.load(rt, loadProgress, signal);
    loadProgress.done(`${weights.tensors.size} tensors, ${formatBytes(weights.bytes)} on the GPU`);
    const loaded = await createLoadedModel(rt, weights, { maxContext: context, maxBatch: batch });
    try {
      let progress: Progress | undefined;
      return await evaluateTexts(loaded.model, texts, {
        context,
        batchWindows: batch,
        signal,
        onProgress: (p) => {
          if (p.done === 0) progress = new Progress(`ppl ${p.label}`, values.quiet);
          progress?.update(p.done, p.total, `windows of ${context}`);
        },
      });
    } finally {
      loaded.destroy();
    }
  });

  if (values.json) {
    const json = { model: source.name, ...(source.recipe ? { recipe: JSON.parse(recipeToJson(source.recipe)) as unknown } : {}), context, texts: results.map(pplJson) };
    out(`${JSON.stringify(json, null, 2)}\n`);
  } else {
    out(`${source.name}, context ${context}\n`);
    out(
      `${table([
        ['text', 'tokens', 'predicted', 'nll_mean', 'ppl'],
        ...results.map((r) => [r.label, String(r.tokens), String(r.predicted), r.nllMean.toFixed(6), r.ppl.toFixed(4)]),
      ])}\n`,
    );
  }
  return 0;
}
