/**
 * Can these checkpoints be merged? Lists every mismatch at once (not just the first), so the UI
 * and the CLI can show the whole picture. Errors block a merge; warnings (dtype differences,
 * informational config fields) do not: merges compute in f32 whatever the stored dtype.
 */
import type { Checkpoint, TensorRef } from './checkpoint.ts';
import type { ModelSpec } from './spec.ts';

export type CompatibilityKind = 'architecture' | 'spec' | 'missing-tensor' | 'extra-tensor' | 'shape' | 'dtype';

export interface CompatibilityItem {
  /** Name of the checkpoint compared with the base. */
  checkpoint: string;
  tensor?: string;
  kind: CompatibilityKind;
  message: string;
  severity: 'error' | 'warning';
}

export interface CompatibilityReport {
  ok: boolean;
  base: string;
  items: CompatibilityItem[];
}

/** Fields that change tensor shapes or the forward pass: differing values make a merge meaningless. */
const ERROR_FIELDS: (keyof ModelSpec)[] = [
  'vocabSize',
  'hiddenSize',
  'numLayers',
  'numHeads',
  'numKvHeads',
  'headDim',
  'intermediateSize',
  'norm',
  'activation',
  'positions',
  'attnBias',
  'attnOutBias',
  'mlpBias',
  'tieWordEmbeddings',
  'qkNorm',
  'normPlusOne',
  'embedScale',
];
/**
 * Fields the merged model takes from the base; a difference is worth a warning (a long-context
 * fine-tune may change its RoPE scaling, say, and the merge then uses the base's).
 */
const WARNING_FIELDS: (keyof ModelSpec)[] = [
  'maxPositions',
  'normEps',
  'ropeTheta',
  'ropeScaling',
  'slidingWindow',
  'slidingLayers',
  'attnScale',
  'attnSoftcap',
  'finalSoftcap',
  'bosTokenId',
  'eosTokenId',
];

/** Spec values as the card shows them; objects (RoPE scaling, per-layer windows) as JSON. */
const shown = (v: unknown): string => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

function shapeText(t: TensorRef): string {
  return `[${t.shape.join(', ')}]`;
}

export function checkCompatibility(base: Checkpoint, others: readonly Checkpoint[]): CompatibilityReport {
  const items: CompatibilityItem[] = [];
  for (const other of others) {
    const add = (item: Omit<CompatibilityItem, 'checkpoint'>): void => {
      items.push({ checkpoint: other.name, ...item });
    };
    if (other.spec.family !== base.spec.family || other.spec.modelType !== base.spec.modelType) {
      add({
        kind: 'architecture',
        severity: 'error',
        message: `model_type ${other.spec.modelType} (${other.spec.family} family) differs from base '${base.name}' model_type ${base.spec.modelType} (${base.spec.family} family)`,
      });
    }
    for (const [fields, severity] of [
      [ERROR_FIELDS, 'error'],
      [WARNING_FIELDS, 'warning'],
    ] as const) {
      for (const field of fields) {
        const a = shown(base.spec[field]);
        const b = shown(other.spec[field]);
        if (a !== b) add({ kind: 'spec', severity, message: `${field} is ${b}, base '${base.name}' has ${a}` });
      }
    }
    for (const [name, t] of base.tensors) {
      const o = other.tensors.get(name);
      if (!o) {
        // A missing buffer (e.g. GPT-2 attn.bias, not saved by recent transformers) is taken from the base.
        add({ kind: 'missing-tensor', tensor: name, severity: t.kind === 'param' ? 'error' : 'warning', message: `missing ${t.kind} tensor that base '${base.name}' has` });
        continue;
      }
      if (o.shape.length !== t.shape.length || o.shape.some((d, i) => d !== t.shape[i])) {
        add({ kind: 'shape', tensor: name, severity: 'error', message: `shape ${shapeText(o)} differs from base '${base.name}' ${shapeText(t)}` });
      }
      if (o.dtype !== t.dtype) {
        add({ kind: 'dtype', tensor: name, severity: 'warning', message: `dtype ${o.dtype} differs from base '${base.name}' ${t.dtype} (merged in f32, written as the output dtype)` });
      }
    }
    for (const [name, o] of other.tensors) {
      if (base.tensors.has(name)) continue;
      add({ kind: 'extra-tensor', tensor: name, severity: o.kind === 'param' ? 'error' : 'warning', message: `has a ${o.kind} tensor that base '${base.name}' lacks` });
    }
  }
  return { ok: !items.some((i) => i.severity === 'error'), base: base.name, items };
}
