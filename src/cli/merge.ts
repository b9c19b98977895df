import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { formatBytes, recipeToJson, recipeToMergekitYaml } from '../engine/index.ts';
import { folderSink } from '../node/sink.ts';
import { MERGE_HELP, MERGE_OPTIONS, openRecipe, recipeFromArgs } from './mergeArgs.ts';
import { cancelOnSignals, Progress } from './progress.ts';
import { withWorkspace, type CommandEnv } from './session.ts';

const HELP = `dem merge --base DIR --model DIR[:WEIGHT] ... --out DIR [options]
dem merge --config FILE.yml --out DIR

Merges on the GPU, tensor by tensor (the checkpoint never has to fit in GPU memory), and writes
a Hugging Face folder: model.safetensors (or shards + index above --max-shard-size), config.json
and tokenizer files from the base, dem-recipe.json and mergekit_config.yml.

${MERGE_HELP}
Output:
  --out DIR                  output folder (created)
  --max-shard-size BYTES     shard the weights above this size (default 5000000000)
  --memory-budget BYTES      cap on GPU memory the merge may hold at once
  --as-adapter               a task_arithmetic merge of LoRA adapters alone: write a PEFT adapter
                             (adapter_config.json + adapter_model.safetensors: the factors stacked,
                             the coefficients folded in) instead of the merged model
  --quiet                    no progress lines on stderr`;

export async function runMerge(args: string[], env: CommandEnv = {}): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...MERGE_OPTIONS,
      out: { type: 'string' },
      'max-shard-size': { type: 'string' },
      'memory-budget': { type: 'string' },
      'as-adapter': { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
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
    const extraFiles = { 'dem-recipe.json': recipeToJson(recipe), 'mergekit_config.yml': recipeToMergekitYaml(recipe) };
    if (values['as-adapter']) {
      const result = await ws.exportAdapter(recipe, folderSink(out), { extraFiles });
      new Progress('merge', values.quiet).done(`PEFT adapter, ${formatBytes(result.bytes)} → ${out}`);
      return 0;
    }
    const progress = new Progress('merge', values.quiet);
    const result = await ws.exportMerge(recipe, folderSink(out), {
      signal,
      onProgress: (p) => {
        if (p.stage === 'merge') progress.update(p.done, p.total, p.tensor);
      },
      maxShardBytes: values['max-shard-size'] === undefined ? undefined : Number(values['max-shard-size']),
      extraFiles,
    });
    progress.done(`${result.tensors} tensors, ${formatBytes(result.bytes)} → ${out} (GPU peak ${formatBytes((await runtime()).memory.peak)})`);
    return 0;
  });
}
