import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { exportMerged } from '../engine/merge/export.ts';
import { planMerge, streamMerge } from '../engine/merge/execute.ts';
import { recipeToJson } from '../engine/merge/recipe.ts';
import { recipeToMergekitYaml } from '../engine/merge/yaml.ts';
import { createNodeRuntime } from '../node/gpu.ts';
import { folderSink } from '../node/sink.ts';
import { formatBytes } from '../engine/index.ts';
import { MERGE_HELP, MERGE_OPTIONS, openJob, recipeFromArgs } from './mergeArgs.ts';
import { cancelOnSignals, Progress } from './progress.ts';

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
  --quiet                    no progress lines on stderr`;

export async function runMerge(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...MERGE_OPTIONS,
      out: { type: 'string' },
      'max-shard-size': { type: 'string' },
      'memory-budget': { type: 'string' },
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
  const signal = cancelOnSignals();
  const { recipe, paths } = recipeFromArgs(values);
  const job = await openJob(recipe, paths, signal);
  const budget = values['memory-budget'] === undefined ? undefined : Number(values['memory-budget']);
  const rt = await createNodeRuntime({ label: 'dem-merge', memoryBudget: budget });
  try {
    const plan = planMerge(job);
    const progress = new Progress('merge', values.quiet);
    const stream = streamMerge(rt, job, {
      output: 'bytes',
      signal,
      onProgress: (p) => progress.update(p.done, p.total, p.tensor),
    });
    const out = resolve(values.out);
    const result = await exportMerged(folderSink(out), job.base, plan, stream, {
      maxShardBytes: values['max-shard-size'] === undefined ? undefined : Number(values['max-shard-size']),
      extraFiles: { 'dem-recipe.json': recipeToJson(recipe), 'mergekit_config.yml': recipeToMergekitYaml(recipe) },
    });
    progress.done(`${result.tensors} tensors, ${formatBytes(result.bytes)} → ${out} (GPU peak ${formatBytes(rt.memory.peak)})`);
    return 0;
  } finally {
    rt.destroy();
  }
}
