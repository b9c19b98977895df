import { parseCommandArgs } from './args.ts';
import { relative, resolve, sep } from 'node:path';
import { dominantFloatDtype, dtypeName, formatBytes, InputError, modelCard, parseByteSize, recipeToJson, recipeToMergekitYaml, type FloatDTypeName, type MergeRecipe } from '../engine/index.ts';
import { folderSink } from '../node/sink.ts';
import { hubCacheDir } from '../node/hfCache.ts';
import { MERGE_HELP, MERGE_OPTIONS, modelReference, openRecipe, recipeFromArgs } from './mergeArgs.ts';
import { cancelOnSignals, Progress } from './progress.ts';
import { withWorkspace, type CommandEnv } from './session.ts';

const HELP = `dem merge --base DIR --model DIR[:WEIGHT] ... --out DIR [options]
dem merge --config FILE.yml --out DIR
dem merge FILE.yml OUT_DIR         (mergekit-yaml's order)

Merges on the GPU, tensor by tensor (the checkpoint never has to fit in GPU memory), and writes
a Hugging Face folder: model.safetensors (or shards + index above --max-shard-size), config.json
tokenizer files and chat templates from the base, dem-recipe.json (the recipe as given),
mergekit_config.yml (its paths relative to the output folder; hub ids stay hub ids) and a
README.md model card.

The folder is written as a whole: into a hidden temporary folder beside --out, renamed to --out
only when complete. A failure, Ctrl-C or a full disk leaves --out as it was. --out may not be,
contain or lie inside an input folder, and must be new or empty unless --force is given.

${MERGE_HELP}
Output:
  --out DIR                  output folder (created; new or empty)
  --force                    replace a non-empty --out (only once the new export is complete)
  --max-shard-size SIZE      shard the weights above this size: bytes, or with a unit
                             (5GB, 500MB: decimal as Hugging Face; 4GiB: binary); default 5GB
  --out-shard-size SIZE      the same as --max-shard-size (mergekit's name)
  --memory-budget SIZE       cap on GPU memory the merge may hold at once (same units; the
                             plan, printed first, refuses what cannot fit)
  --json                     print a summary as JSON (files, bytes, gpu_peak_bytes: the most GPU
                             memory the command held at once)
  --as-adapter               a task_arithmetic merge of LoRA adapters alone: write a PEFT adapter
                             (adapter_config.json + adapter_model.safetensors: the factors stacked,
                             the coefficients folded in) instead of the merged model
  --quiet                    no progress lines on stderr`;

export async function runMerge(args: string[], env: CommandEnv = {}): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args,
    allowPositionals: true,
    options: {
      ...MERGE_OPTIONS,
      out: { type: 'string' },
      force: { type: 'boolean' },
      'max-shard-size': { type: 'string' },
      'memory-budget': { type: 'string' },
      json: { type: 'boolean' },
      'as-adapter': { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }, { 'out-shard-size': 'max-shard-size' });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length) {
    // mergekit-yaml CONFIG OUT: both or neither, and not besides --config/--out.
    if (positionals.length !== 2 || values.config !== undefined || values.out !== undefined) {
      console.error(`dem merge: positional arguments are CONFIG.yml OUT_DIR (both, instead of --config and --out); got ${positionals.map((p) => `'${p}'`).join(' ')}\n\n${HELP}`);
      return 2;
    }
    [values.config, values.out] = positionals as [string, string];
  }
  if (!values.out) {
    console.error(`dem merge: --out DIR is required\n\n${HELP}`);
    return 2;
  }
  const signal = env.signal ?? cancelOnSignals();
  const { recipe, paths } = recipeFromArgs(values);
  const budget = sizeOption('memory-budget', values['memory-budget']);
  const maxShardBytes = sizeOption('max-shard-size', values['max-shard-size']);
  const out = resolve(values.out);
  // The sink refuses a bad --out, or a disk without room, when the export begins: after the
  // headers are read (the plan gives the exact size), before the GPU is started.
  const sink = folderSink(out, { force: values.force, inputs: [...new Set(paths.values())], label: `--out ${values.out}`, disk: env.disk });
  return withWorkspace(env, { label: 'dem-merge', memoryBudget: budget }, async (ws, _runtime, peakBytes) => {
    await openRecipe(ws, recipe, paths, signal);
    const baseDtype = dtypeName(dominantFloatDtype(ws.checkpoint(recipe.base).tensors.values()) ?? 'F32');
    const extraFiles = outputFiles(recipe, paths, out, baseDtype);
    if (values['as-adapter']) {
      const result = await ws.exportAdapter(recipe, sink, { extraFiles });
      new Progress('merge', values.quiet).done(`PEFT adapter, ${formatBytes(result.bytes)} → ${out}`);
      return 0;
    }
    const progress = new Progress('merge', values.quiet);
    const result = await ws.exportMerge(recipe, sink, {
      signal,
      onProgress: (p) => {
        if (p.stage === 'plan' && !values.quiet) process.stderr.write(`${p.plan.lines.join('\n')}\n`);
        if (p.stage === 'merge') progress.update(p.done, p.total, p.tensor);
      },
      maxShardBytes,
      extraFiles,
    });
    const peak = await peakBytes();
    progress.done(`${result.tensors} tensors, ${formatBytes(result.bytes)} → ${out} (GPU peak ${formatBytes(peak)})`);
    if (values.json) console.log(JSON.stringify({ out, tensors: result.tensors, bytes: result.bytes, files: result.files, gpu_peak_bytes: peak }, null, 2));
    return 0;
  });
}

/** A SIZE option (bytes or 5GB / 4GiB); InputError naming the flag otherwise. */
function sizeOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const bytes = parseByteSize(v);
  if (bytes === undefined) throw new InputError(`--${name}: '${v}' is not a positive size (bytes, or with a unit: 5GB, 500MB, 4GiB)`);
  return bytes;
}

/**
 * The text files written beside the weights. mergekit_config.yml and the card name local folders
 * relative to the output folder (the file stays valid wherever the tree is moved together); an id
 * found in the Hugging Face cache keeps its hub id.
 */
export function outputFiles(recipe: MergeRecipe, paths: ReadonlyMap<string, string>, out: string, baseDtype: FloatDTypeName): Record<string, string> {
  const folderOf = (key: string, shown: string): string => {
    const path = paths.get(key);
    if (path === undefined || path.startsWith(resolve(hubCacheDir()) + sep)) return shown;
    return relative(out, path).split('\\').join('/') || '.';
  };
  // BASE+ADAPTER (mergekit's LoRA reference): each part relative on its own.
  const id = (given: string): string => {
    const ref = modelReference(given);
    return ref.adapter === undefined ? folderOf(given, given) : `${folderOf(ref.model, ref.model)}+${folderOf(given, ref.adapter)}`;
  };
  const exported: MergeRecipe = { ...recipe, base: id(recipe.base), models: recipe.models.map((m) => ({ ...m, model: id(m.model) })) };
  return {
    'dem-recipe.json': recipeToJson(recipe),
    'mergekit_config.yml': recipeToMergekitYaml(exported, baseDtype),
    'README.md': modelCard(exported, baseDtype),
  };
}
