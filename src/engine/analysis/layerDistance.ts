import { throwIfAborted } from '../errors.ts';
import type { Checkpoint, TensorRef } from '../io/checkpoint.ts';
import { decodeToF32, isFloatDType } from '../io/dtypes.ts';

/**
 * The paper's layer-wise view (DEM, arXiv 2406.15570, Figure 3): for each fine-tune, the
 * Euclidean distance ‖θ_i − θ‖ over each layer's tensors, and the same normalised per model (each
 * row divided by its largest entry) so models trained for different lengths compare by shape.
 * Groups: 'embeddings' (token/position embeddings), one per transformer block, 'final' (final
 * norm, untied LM head). Sums run in float64 over the stored values decoded to f32 (exact for
 * F16/BF16), one tensor at a time.
 */
export interface LayerDistances {
  /** Group names, in model order: 'embeddings', 'layer 0' … 'layer L−1', 'final'. */
  groups: string[];
  /** Fine-tune names, in the order given. */
  models: string[];
  /** (N, G) ‖Δ‖₂ over each group's learned tensors; 0 where a group has no tensors. */
  distance: number[][];
  /** (N, G) distance / max over the model's groups (all 0 for a model equal to the base). */
  normalised: number[][];
  /** (G) element counts behind each group. */
  elements: number[];
  /** (G) ‖θ‖₂ of the base over each group: distance / baseNorm is how far a layer moved relative to its size. */
  baseNorm: number[];
}

export interface LayerDistanceOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** 'embeddings' | 'layer i' | 'final' for a tensor (by its table role); null for tensors the view leaves out. */
export function distanceGroup(ref: Pick<TensorRef, 'layer' | 'kind' | 'role'>): string | null {
  if (ref.kind !== 'param') return null;
  if (ref.layer !== null) return `layer ${ref.layer}`;
  return ref.role === 'embed' || ref.role === 'pos_embed' ? 'embeddings' : 'final';
}

export function distanceGroups(numLayers: number): string[] {
  return ['embeddings', ...Array.from({ length: numLayers }, (_, i) => `layer ${i}`), 'final'];
}

export function normalisePerModel(distance: readonly (readonly number[])[]): number[][] {
  return distance.map((row) => {
    const max = Math.max(0, ...row);
    return row.map((d) => (max > 0 ? d / max : 0));
  });
}

export async function layerDistances(base: Checkpoint, models: readonly Checkpoint[], options: LayerDistanceOptions = {}): Promise<LayerDistances> {
  const groups = distanceGroups(base.spec.numLayers);
  const index = new Map(groups.map((g, i) => [g, i]));
  const sums = models.map(() => new Float64Array(groups.length));
  const elements = new Array<number>(groups.length).fill(0);
  const baseSquares = new Float64Array(groups.length);
  const refs = [...base.tensors.values()].filter((r) => distanceGroup(r) !== null && isFloatDType(r.dtype));
  for (const [t, ref] of refs.entries()) {
    throwIfAborted(options.signal);
    const g = index.get(distanceGroup(ref)!)!;
    const b = decodeToF32(await base.read(ref.name), ref.dtype);
    elements[g]! += b.length;
    let bs = 0;
    for (let k = 0; k < b.length; k++) bs += b[k]! * b[k]!;
    baseSquares[g]! += bs;
    for (const [i, model] of models.entries()) {
      const other = model.tensors.get(ref.name);
      if (!other || !isFloatDType(other.dtype) || other.shape.join() !== ref.shape.join()) continue;
      const m = decodeToF32(await model.read(ref.name), other.dtype);
      let s = 0;
      for (let k = 0; k < b.length; k++) {
        const d = m[k]! - b[k]!;
        s += d * d;
      }
      sums[i]![g]! += s;
    }
    options.onProgress?.(t + 1, refs.length);
  }
  const distance = sums.map((row) => Array.from(row, Math.sqrt));
  return { groups, models: models.map((m) => m.name), distance, normalised: normalisePerModel(distance), elements, baseNorm: Array.from(baseSquares, Math.sqrt) };
}
