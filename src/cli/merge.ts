import { parseCommandArgs } from './args.ts';
import { relative, resolve, sep } from 'node:path';
import { formatBytes, modelCard, recipeToJson, recipeToMergekitYaml, type MergeRecipe } from '../engine/index.ts';
import { folderSink } from '../node/sink.ts';
import { hubCacheDir } from '../node/hfCache.ts';
import { MERGE_HELP, MERGE_OPTIONS, openRecipe, recipeFromArgs } from './mergeArgs.ts';
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

${MERGE_HELP}
Output:
  --out DIR                  output folder (created)
  --max-shard-size BYTES     shard the weights above this size (default 5000000000)
  --out-shard-size BYTES     the same as --max-shard-size (mergekit's name)
  --memory-budget BYTES      cap on GPU memory the merge may hold at once
  --quiet                    no progress lines on stderr`;

export async function runMerge(args: string[], env: CommandEnv = {}): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args,
    allowPositionals: true,
    options: {
      ...MERGE_OPTIONS,
      out: { type: 'string' },
      'max-shard-size': { type: 'string' },
      'memory-budget': { type: 'string' },
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
  const budget = values['memory-budget'] === undefined ? undefined : Number(values['memory-budget']);
  const out = resolve(values.out);
  return withWorkspace(env, { label: 'dem-merge', memoryBudget: budget }, async (ws, runtime) => {
    await openRecipe(ws, recipe, paths, signal);
    const progress = new Progress('merge', values.quiet);
    const result = await ws.exportMerge(recipe, folderSink(out), {
      signal,
      onProgress: (p) => {
        if (p.stage === 'merge') progress.update(p.done, p.total, p.tensor);
      },
      maxShardBytes: values['max-shard-size'] === undefined ? undefined : Number(values['max-shard-size']),
      extraFiles: outputFiles(recipe, paths, out),
    });
    progress.done(`${result.tensors} tensors, ${formatBytes(result.bytes)} → ${out} (GPU peak ${formatBytes((await runtime()).memory.peak)})`);
    return 0;
  });
}

/**
 * The text files written beside the weights. mergekit_config.yml and the card name local folders
 * relative to the output folder (the file stays valid wherever the tree is moved together); an id
 * found in the Hugging Face cache keeps its hub id.
 */
export function outputFiles(recipe: MergeRecipe, paths: ReadonlyMap<string, string>, out: string): Record<string, string> {
  const id = (given: string): string => {
    const path = paths.get(given);
    if (path === undefined || path.startsWith(resolve(hubCacheDir()) + sep)) return given;
    return relative(out, path).split('\\').join('/') || '.';
  };
  const exported: MergeRecipe = { ...recipe, base: id(recipe.base), models: recipe.models.map((m) => ({ ...m, model: id(m.model) })) };
  return {
    'dem-recipe.json': recipeToJson(recipe),
    'mergekit_config.yml': recipeToMergekitYaml(exported),
    'README.md': modelCard(exported),
  };
}
