import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { folderFileSet } from '../../node/files.ts';
import { openCheckpoint, type Checkpoint, type TensorRef } from '../io/checkpoint.ts';
import { decodeToF32, encodeFromF32, type DType } from '../io/dtypes.ts';
import type { WeightRole } from '../io/roles.ts';
import { distanceGroup, distanceGroups, layerDistances } from './index.ts';
import { groupNormsRef, layerDistancesRef } from './layerDistance.ref.ts';

const FIXTURES = join(import.meta.dirname, '../../../e2e/fixtures');

/** A Checkpoint over in-memory tensors (only what layerDistances reads). */
function memoryCheckpoint(name: string, numLayers: number, tensors: { name: string; layer: number | null; role: WeightRole; dtype: DType; data: Uint8Array; shape: number[] }[]): Checkpoint {
  const map = new Map<string, TensorRef>();
  const bytes = new Map<string, Uint8Array>();
  for (const t of tensors) {
    map.set(t.name, { name: t.name, storedName: t.name, dtype: t.dtype, shape: t.shape, file: 'mem', begin: 0, byteLength: t.data.byteLength, kind: 'param', layer: t.layer, role: t.role });
    bytes.set(t.name, t.data);
  }
  return { name, spec: { numLayers } as Checkpoint['spec'], config: {}, files: new Map(), tensors: map, metadata: {}, sharded: false, weightFiles: [], read: async (n) => bytes.get(n)! };
}

describe('layer distances', () => {
  it('matches the float64 reference on random F32/BF16 tensors of awkward sizes', async () => {
    const L = 3;
    const layout = [
      { name: 'model.embed_tokens.weight', layer: null, role: 'embed' as const, shape: [37, 5] },
      ...Array.from({ length: L }, (_, i) => [
        { name: `model.layers.${i}.self_attn.q_proj.weight`, layer: i, role: 'attn.q' as const, shape: [13, 7] },
        { name: `model.layers.${i}.mlp.down_proj.weight`, layer: i, role: 'mlp.down' as const, shape: [3, 11] },
      ]).flat(),
      { name: 'model.norm.weight', layer: null, role: 'norm_f' as const, shape: [5] },
    ];
    const make = (dtype: DType, shift: number[] | null, baseValues?: Map<string, Float64Array>) => {
      const values = new Map<string, Float64Array>();
      const tensors = layout.map((t, k) => {
        const n = t.shape.reduce((a, b) => a * b, 1);
        const b = baseValues?.get(t.name);
        const v = Float64Array.from({ length: n }, (_, j) => (b ? b[j]! : Math.random() * 2 - 1) + (shift ? (Math.random() - 0.5) * shift[k % shift.length]! : 0));
        const data = encodeFromF32(Float32Array.from(v), dtype);
        values.set(t.name, Float64Array.from(decodeToF32(data, dtype)));
        return { ...t, dtype, data };
      });
      return { tensors, values };
    };
    const base = make('F32', null);
    const a = make('F32', [0.01, 0.5, 0.2], base.values);
    const b = make('BF16', [1, 0.03], base.values);
    const ck = (n: string, m: ReturnType<typeof make>) => memoryCheckpoint(n, L, m.tensors);
    const got = await layerDistances(ck('base', base), [ck('a', a), ck('b', b)]);
    const groups = distanceGroups(L);
    expect(got.groups).toEqual(groups);
    const groupOf = (name: string) => distanceGroup({ kind: 'param', ...layout.find((t) => t.name === name)! });
    const want = layerDistancesRef(base.values, [a.values, b.values], groupOf, groups);
    for (const [i, row] of want.entries()) {
      for (const [g, w] of row.entries()) {
        const d = got.distance[i]![g]!;
        if (Math.abs(d - w) > 1e-12 + 1e-12 * Math.abs(w)) throw new Error(`model ${i} group ${groups[g]}: ${d} vs reference ${w}`);
      }
      const max = Math.max(...row);
      for (const [g, w] of row.entries()) expect(Math.abs(got.normalised[i]![g]! - w / max)).toBeLessThan(1e-12);
      expect(Math.max(...got.normalised[i]!)).toBe(1);
    }
    for (const [g, w] of groupNormsRef(base.values, groupOf, groups).entries()) {
      if (Math.abs(got.baseNorm[g]! - w) > 1e-12 * w) throw new Error(`base norm of ${groups[g]}: ${got.baseNorm[g]} vs reference ${w}`);
    }
  });

  it('on the fixtures, ‖Δ‖ per layer is 0.01·sqrt(elements) (fine-tunes are base + N(0, 0.01²)), and 0 for the base itself', async () => {
    const base = await openCheckpoint(await folderFileSet(join(FIXTURES, 'tiny-gpt2')), 'tiny-gpt2');
    const ft = await openCheckpoint(await folderFileSet(join(FIXTURES, 'tiny-gpt2-ft-a')), 'ft-a');
    const r = await layerDistances(base, [ft, base]);
    expect(r.groups).toEqual(['embeddings', 'layer 0', 'layer 1', 'final']);
    // wte (V, C) and wpe (P, C) by their roles; ln_f weight and bias (the head is tied).
    expect([r.elements[0], r.elements[3]]).toEqual([300 * 32 + 64 * 32, 2 * 32]);
    for (const [g, n] of r.elements.entries()) {
      const expected = 0.01 * Math.sqrt(n);
      // Relative sd of a chi estimate is ~1/sqrt(2n); allow 5 sd.
      expect(Math.abs(r.distance[0]![g]! / expected - 1)).toBeLessThan(5 / Math.sqrt(2 * n));
    }
    expect(r.distance[1]).toEqual([0, 0, 0, 0]);
    expect(r.normalised[1]).toEqual([0, 0, 0, 0]);
  });
});
