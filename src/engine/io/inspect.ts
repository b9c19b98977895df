/**
 * Checkpoint summaries for `dem inspect` and the UI's checkpoint card. Headers only: no tensor
 * data is read.
 */
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, layerIndex, openAdapter, PEFT_PREFIX, type LoraAdapter } from './adapter.ts';
import { openCheckpoint, CONFIG_FILE, INDEX_FILE, TOKENIZER_FILE, type Checkpoint, type OpenOptions } from './checkpoint.ts';
import type { FileSet } from './source.ts';
import type { ModelSpec } from './spec.ts';
import type { PeftAdapterSummary, CheckpointSummary } from './summary.ts';

const num = (x: number): string => String(Number(x.toPrecision(6)));

/** The architecture's distinctive features in words, from the spec and the roles its tensors have. */
export function specFeatures(spec: ModelSpec, roles: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const r = spec.ropeScaling;
  if (r?.type === 'linear') out.push(`RoPE linear scaling ×${num(r.factor)}`);
  if (r?.type === 'dynamic') out.push(`RoPE dynamic NTK scaling (factor ${num(r.factor)}) beyond ${spec.maxPositions} positions`);
  if (r?.type === 'llama3') out.push(`RoPE llama3 scaling (factor ${num(r.factor)}, low ${num(r.lowFreqFactor)}, high ${num(r.highFreqFactor)}, original ${r.originalMaxPositions} positions)`);
  if (r?.type === 'yarn') out.push(`RoPE yarn scaling (factor ${num(r.factor)}, original ${r.originalMaxPositions} positions, attention factor ${num(r.attentionFactor)})`);
  if (roles.has('attn.qkv') || roles.has('mlp.gate_up')) out.push('fused projections (qkv, gate_up)');
  if (spec.qkNorm) out.push(spec.qkNorm === 'head' ? 'q/k RMSNorm per head' : 'q/k RMSNorm over the projection');
  if (roles.has('attn.post_norm')) out.push(roles.has('norm1') ? 'norms before and after attention and MLP' : 'norms after attention and MLP only');
  if (spec.normPlusOne) out.push('RMSNorm scale (1 + w)');
  if (spec.embedScale !== undefined) out.push(`embeddings × ${num(spec.embedScale)}`);
  if (spec.activation === 'gelu_new' && roles.has('mlp.gate')) out.push('GeGLU (tanh GELU)');
  if (spec.attnScale !== undefined) out.push(`attention scale ${num(spec.attnScale)}`);
  if (spec.attnSoftcap !== undefined) out.push(`attention soft cap ${num(spec.attnSoftcap)}`);
  if (spec.finalSoftcap !== undefined) out.push(`final logit soft cap ${num(spec.finalSoftcap)}`);
  if (spec.slidingWindow !== undefined) {
    const layers = spec.slidingLayers?.flatMap((on, i) => (on ? [i] : []));
    out.push(`sliding window ${spec.slidingWindow}${layers ? ` on ${layers.length} of ${spec.numLayers} layers` : ''}`);
  }
  return out;
}

function elements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function summarise(ckpt: Checkpoint): CheckpointSummary {
  let parameterCount = 0;
  let bufferCount = 0;
  let totalBytes = 0;
  const dtypes: Record<string, number> = {};
  const tensors: CheckpointSummary['tensors'] = [];
  for (const t of ckpt.tensors.values()) {
    const n = elements(t.shape);
    if (t.kind === 'param') parameterCount += n;
    else if (t.kind === 'buffer') bufferCount += n;
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + n;
    totalBytes += t.byteLength;
    tensors.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], kind: t.kind, file: t.file, bytes: t.byteLength });
  }
  const features = specFeatures(ckpt.spec, new Set([...ckpt.tensors.values()].flatMap((t) => (t.role ? [t.role] : []))));
  const a = ckpt.adapter;
  const files = a
    ? [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]
    : [CONFIG_FILE, ...(ckpt.sharded ? [INDEX_FILE] : []), ...ckpt.weightFiles, ...(ckpt.tokenizerJson !== undefined ? [TOKENIZER_FILE] : [])];
  return {
    name: ckpt.name,
    modelType: ckpt.spec.modelType,
    family: ckpt.spec.family,
    spec: ckpt.spec,
    parameterCount,
    bufferCount,
    dtypes,
    totalBytes,
    files,
    sharded: ckpt.sharded,
    tensors,
    hasTokenizer: ckpt.tokenizerJson !== undefined,
    ...(features.length ? { features } : {}),
    ...(a
      ? {
          adapter: {
            base: a.base.name,
            ranks: [...new Set([...a.targets.values()].map((t) => t.rank))].sort((x, y) => x - y),
            alpha: a.adapter.alpha,
            rslora: a.adapter.rslora,
            targets: [...a.targets.keys()],
            replaced: [...a.replaced],
            bytes: [...a.adapter.targets.flatMap((t) => [t.a, t.b]), ...a.adapter.replacements].reduce((s, t) => s + t.byteLength, 0),
          },
        }
      : {}),
  };
}

export async function inspectCheckpoint(files: FileSet, name?: string, options: OpenOptions = {}): Promise<CheckpointSummary> {
  return summarise(await openCheckpoint(files, name, options));
}

const sorted = (xs: Iterable<number>): number[] => [...new Set(xs)].sort((x, y) => x - y);

/** A PEFT adapter as read by openAdapter, described without its base. */
export function summariseAdapter(adapter: LoraAdapter): PeftAdapterSummary {
  const all = [...adapter.targets.flatMap((t) => [t.a, t.b]), ...adapter.replacements].sort((x, y) => x.begin - y.begin);
  const dtypes: Record<string, number> = {};
  for (const t of all) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + elements(t.shape);
  const base = adapter.config.base_model_name_or_path;
  return {
    name: adapter.name,
    peftType: 'LORA',
    base: typeof base === 'string' && base !== '' ? base : null,
    r: adapter.r,
    alpha: adapter.alpha,
    rslora: adapter.rslora,
    ranks: sorted(adapter.targets.map((t) => t.rank)),
    scales: sorted(adapter.targets.map((t) => t.scale)),
    targetModules: adapter.targetModules,
    modules: adapter.targets.map((t) => t.module),
    layers: sorted(adapter.targets.flatMap((t) => layerIndex(t.module, adapter.layersPattern) ?? [])),
    layersToTransform: adapter.layersToTransform,
    modulesToSave: adapter.modulesToSave,
    replaced: adapter.replacements.map((t) => (t.key.startsWith(PEFT_PREFIX) ? t.key.slice(PEFT_PREFIX.length) : t.key)),
    tensorCount: all.length,
    parameterCount: all.reduce((s, t) => s + elements(t.shape), 0),
    bytes: all.reduce((s, t) => s + t.byteLength, 0),
    dtypes,
    tensors: all.map((t) => ({ name: t.key, dtype: t.dtype, shape: [...t.shape], bytes: t.byteLength })),
  };
}

export async function inspectAdapter(files: FileSet, name: string): Promise<PeftAdapterSummary> {
  return summariseAdapter(await openAdapter(files, name));
}
