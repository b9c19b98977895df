/**
 * Checkpoint summaries for `dem inspect` and the UI's checkpoint card. Headers only: no tensor
 * data is read.
 */
import { openCheckpoint, CONFIG_FILE, INDEX_FILE, TOKENIZER_FILE, type Checkpoint, type OpenOptions } from './checkpoint.ts';
import type { FileSet } from './source.ts';
import type { CheckpointSummary } from './summary.ts';

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
  };
}

export async function inspectCheckpoint(files: FileSet, name?: string, options: OpenOptions = {}): Promise<CheckpointSummary> {
  return summarise(await openCheckpoint(files, name, options));
}
