import { describe, expect, it } from 'vitest';
import { folderFileSet } from '../../node/files.ts';
import { withGpu } from '../../testing/gpu.ts';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint.ts';
import { isFloatDType } from '../io/dtypes.ts';
import { decodeWeights } from '../kernels/weights.ts';
import { streamMerge } from './execute.ts';
import { parseRecipe } from './recipe.ts';
import { compareOutput } from './testkit.ts';

/**
 * Coefficients by name filter (mergekit's `filter` entries) reach fused tensors by their own
 * name: Phi-3's self_attn.qkv_proj takes the self_attn entry (q, k and v rows alike) and
 * mlp.gate_up_proj the mlp entry; everything else the default. Checked on the GPU's streamed
 * merge against base + Σ ω Δ computed here in float64.
 */
const FIXTURES = new URL('../../../e2e/fixtures/', import.meta.url).pathname;
const open = async (name: string): Promise<Checkpoint> => openCheckpoint(await folderFileSet(`${FIXTURES}${name}`), name);

describe('name filters on fused tensors', () => {
  it("Phi-3: qkv_proj takes the 'self_attn' coefficient, gate_up_proj the 'mlp' one, the rest the default", async () => {
    const base = await open('tiny-phi3');
    const models = await Promise.all(['a', 'b'].map((s) => open(`tiny-phi3-ft-${s}`)));
    const weightA = [{ filter: 'self_attn', value: 0.3 }, { filter: 'mlp', value: 1.2 }, { value: 0.7 }];
    const recipe = parseRecipe({
      version: 1,
      method: 'task_arithmetic',
      base: 'tiny-phi3',
      models: [{ model: 'tiny-phi3-ft-a', parameters: { weight: weightA } }, { model: 'tiny-phi3-ft-b', parameters: { weight: 0.5 } }],
    });
    const want = (name: string): number => (name.includes('self_attn') ? 0.3 : name.includes('mlp') ? 1.2 : 0.7);
    const seen = new Map<string, number>();
    await withGpu(async (rt) => {
      for await (const t of streamMerge(rt, { recipe, base, models }, { output: 'bytes' })) {
        if (!t.merged || !t.data || !isFloatDType(t.ref.dtype)) continue;
        const dtype = t.ref.dtype;
        const decode = async (c: Checkpoint): Promise<Float64Array> => decodeWeights(await c.read(t.ref.name), dtype);
        const [b, fa, fb] = await Promise.all([decode(base), decode(models[0]!), decode(models[1]!)]);
        const ref = b.map((v, i) => v + want(t.ref.name) * (fa[i]! - v) + 0.5 * (fb[i]! - v));
        const c = compareOutput(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength) as ArrayBuffer, ref, t.dtype);
        expect(c.mismatches, t.ref.name).toEqual([]);
        seen.set(t.ref.name, want(t.ref.name));
      }
    });
    expect(seen.get('model.layers.0.self_attn.qkv_proj.weight')).toBe(0.3);
    expect(seen.get('model.layers.1.mlp.gate_up_proj.weight')).toBe(1.2);
    expect(seen.get('model.layers.0.input_layernorm.weight')).toBe(0.7);
    expect(seen.size).toBe(base.tensors.size);
  });
});
