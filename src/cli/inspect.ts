import { parseArgs } from 'node:util';
import { basename, resolve } from 'node:path';
import { folderFileSet } from '../node/files.ts';
import { formatBytes, inspectAdapter, inspectCheckpoint, isAdapterFolder, type CheckpointSummary, type PeftAdapterSummary } from '../engine/index.ts';
import { formatCount, printable, table } from './format.ts';

const HELP = `dem inspect PATH [--json]

Reads a Hugging Face checkpoint folder (config.json, model.safetensors or a sharded
model.safetensors.index.json, optional tokenizer.json) without loading it whole, and prints its
architecture, learned-parameter count (buffers such as GPT-2's attn.bias masks are listed but not
counted), dtypes and tensors. A PEFT LoRA adapter folder (adapter_config.json +
adapter_model.safetensors) is described on its own: r, lora_alpha, rsLoRA, targets, the layers
that carry factors, tensor and parameter counts, bytes and the base it names. --json prints the
same as JSON.`;

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
  const files = await folderFileSet(path);
  if (isAdapterFolder(files)) {
    const adapter = await inspectAdapter(files, basename(path));
    console.log(values.json ? JSON.stringify(adapter, null, 2) : formatAdapter(adapter));
    return 0;
  }
  const summary = await inspectCheckpoint(files, basename(path));
  console.log(values.json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
  return 0;
}

/** The summary for a terminal: names from the files (tensors, shards, the folder) with control characters escaped. */
export function formatSummary(s: CheckpointSummary): string {
  const spec = s.spec;
  const buffers = s.tensors.filter((t) => t.kind === 'buffer').length;
  const lines = [
    `${printable(s.name)}: ${s.modelType} (${s.family} family)`,
    `parameters: ${formatCount(s.parameterCount)}` + (buffers ? ` (learned only; ${buffers} buffer tensor${buffers === 1 ? '' : 's'} listed, not counted)` : ''),
    `layers ${spec.numLayers}, hidden ${spec.hiddenSize}, heads ${spec.numHeads} (kv ${spec.numKvHeads}), head dim ${spec.headDim}, ` +
      `ffn ${spec.intermediateSize}, vocab ${spec.vocabSize}, positions ${spec.maxPositions}, ${spec.tieWordEmbeddings ? 'tied' : 'untied'} head`,
    ...(s.features ? [`features: ${s.features.join('; ')}`] : []),
    `dtypes: ${Object.entries(s.dtypes)
      .map(([d, n]) => `${d} ${formatCount(n)}`)
      .join(', ')}`,
    `files: ${s.files.length} (${s.sharded ? 'sharded' : 'single file'}), ${formatBytes(s.totalBytes)}${s.hasTokenizer ? ', tokenizer.json' : ', no tokenizer.json'}`,
    '',
    table([['tensor', 'dtype', 'shape', 'kind', 'file'], ...s.tensors.map((t) => [printable(t.name), t.dtype, `[${t.shape.join(', ')}]`, t.kind, printable(t.file)])]),
  ];
  return lines.join('\n');
}

const list = (xs: readonly (string | number)[]): string => (xs.length ? xs.map((x) => printable(String(x))).join(', ') : 'none');

/** A PEFT adapter for a terminal (names from the files escaped). */
export function formatAdapter(s: PeftAdapterSummary): string {
  const num = (x: number): string => String(Number(x.toPrecision(6)));
  const targets = s.targetModules === null ? 'not listed' : typeof s.targetModules === 'string' ? `regex ${printable(s.targetModules)}` : list(s.targetModules);
  const lines = [
    `${printable(s.name)}: LoRA adapter (PEFT) over ${s.base === null ? 'a base it does not name' : `'${printable(s.base)}'`} (read over a base: dem merge --model BASE+ADAPTER)`,
    `r ${s.r}, lora_alpha ${num(s.alpha)}, rsLoRA ${s.rslora ? 'yes' : 'no'}: ranks ${list(s.ranks)}, scale s ${list(s.scales.map(num))}`,
    `target_modules: ${targets}; ${s.modules.length} adapted matri${s.modules.length === 1 ? 'x' : 'ces'} in layers ${list(s.layers)}` +
      (s.layersToTransform ? ` (layers_to_transform ${list(s.layersToTransform)})` : ''),
    ...(s.modulesToSave.length || s.replaced.length ? [`modules_to_save: ${list(s.modulesToSave)}; replaced whole: ${list(s.replaced)}`] : []),
    `tensors ${s.tensorCount}, parameters ${formatCount(s.parameterCount)}, ${formatBytes(s.bytes)}; dtypes: ${Object.entries(s.dtypes)
      .map(([d, n]) => `${d} ${formatCount(n)}`)
      .join(', ')}`,
    '',
    table([['tensor', 'dtype', 'shape'], ...s.tensors.map((t) => [printable(t.name), t.dtype, `[${t.shape.join(', ')}]`])]),
  ];
  return lines.join('\n');
}
