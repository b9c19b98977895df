/**
 * Checkpoint summaries for `dem inspect` and the UI's checkpoint card. Headers only: no tensor
 * data is read.
 */
import { openCheckpoint, CONFIG_FILE, INDEX_FILE, TOKENIZER_FILE, type Checkpoint, type OpenOptions } from './checkpoint.ts';
import type { FileSet } from './source.ts';
import type { ModelSpec } from './spec.ts';
import type { CheckpointSummary } from './summary.ts';

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
  const files = [CONFIG_FILE, ...(ckpt.sharded ? [INDEX_FILE] : []), ...ckpt.weightFiles, ...(ckpt.tokenizerJson !== undefined ? [TOKENIZER_FILE] : [])];
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
  };
}

export async function inspectCheckpoint(files: FileSet, name?: string, options: OpenOptions = {}): Promise<CheckpointSummary> {
  return summarise(await openCheckpoint(files, name, options));
}
