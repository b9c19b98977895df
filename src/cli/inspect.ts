import { parseArgs } from 'node:util';
import { basename, resolve } from 'node:path';
import { folderFileSet } from '../node/files.ts';
import { formatBytes, inspectCheckpoint, type CheckpointSummary } from '../engine/index.ts';
import { formatCount, table } from './format.ts';

const HELP = `dem inspect PATH [--json]

Reads a Hugging Face checkpoint folder (config.json, model.safetensors or a sharded
model.safetensors.index.json, optional tokenizer.json) without loading it whole, and prints its
architecture, learned-parameter count (buffers such as GPT-2's attn.bias masks are listed but not
counted), dtypes and tensors. --json prints the same as JSON.`;

export async function runInspect(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(`dem inspect: expected one PATH\n\n${HELP}`);
    return 2;
  }
  const path = resolve(positionals[0]!);
  const summary = await inspectCheckpoint(await folderFileSet(path), basename(path));
  console.log(values.json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
  return 0;
}

export function formatSummary(s: CheckpointSummary): string {
  const spec = s.spec;
  const buffers = s.tensors.filter((t) => t.kind === 'buffer').length;
  const lines = [
    `${s.name}: ${s.modelType} (${s.family} family)`,
    `parameters: ${formatCount(s.parameterCount)}` + (buffers ? ` (learned only; ${buffers} buffer tensor${buffers === 1 ? '' : 's'} listed, not counted)` : ''),
    `layers ${spec.numLayers}, hidden ${spec.hiddenSize}, heads ${spec.numHeads} (kv ${spec.numKvHeads}), head dim ${spec.headDim}, ` +
      `ffn ${spec.intermediateSize}, vocab ${spec.vocabSize}, positions ${spec.maxPositions}, ${spec.tieWordEmbeddings ? 'tied' : 'untied'} head`,
    ...(s.features ? [`features: ${s.features.join('; ')}`] : []),
    `dtypes: ${Object.entries(s.dtypes)
      .map(([d, n]) => `${d} ${formatCount(n)}`)
      .join(', ')}`,
    `files: ${s.files.length} (${s.sharded ? 'sharded' : 'single file'}), ${formatBytes(s.totalBytes)}${s.hasTokenizer ? ', tokenizer.json' : ', no tokenizer.json'}`,
    '',
    table([['tensor', 'dtype', 'shape', 'kind', 'file'], ...s.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, t.kind, t.file])]),
  ];
  return lines.join('\n');
}
