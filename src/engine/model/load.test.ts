import { describe, expect, it } from 'vitest';
import { folderFileSet } from '../../node/files.ts';
import { withGpu } from '../../testing/gpu.ts';
import { CancelledError } from '../errors.ts';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint.ts';
import { forwardWeights } from '../io/weights.ts';
import { streamMerge, type MergeJob } from '../merge/execute.ts';
import { parseRecipe } from '../merge/recipe.ts';
import { collectMerged, uploadCheckpoint } from './load.ts';

const FIXTURES = new URL('../../../e2e/fixtures/', import.meta.url).pathname;

async function fixture(name: string): Promise<Checkpoint> {
  return openCheckpoint(await folderFileSet(`${FIXTURES}${name}`), name);
}

async function job(base: string, models: [string, number][]): Promise<MergeJob> {
  const recipe = parseRecipe({ version: 1, method: 'task_arithmetic', base, models: models.map(([model, weight]) => ({ model, parameters: { weight } })) });
  return { recipe, base: await fixture(base), models: await Promise.all(models.map(([m]) => fixture(m))) };
}

describe('GPU weights from a checkpoint or a streamed merge', () => {
  it('ω = 0 merge collected on the GPU holds the base bytes of exactly the forward tensors; destroy frees all', async () => {
    const j = await job('tiny-gpt2', [['tiny-gpt2-ft-a', 0], ['tiny-gpt2-ft-c', 0]]);
    await withGpu(async (rt) => {
      const before = rt.memory.live;
      const merged = await collectMerged(rt, j.base.spec, streamMerge(rt, j, { output: 'gpu' }));
      const disk = await uploadCheckpoint(rt, j.base);
      // GPT-2's attn.bias / masked_bias buffers were streamed too, and released on arrival.
      expect(j.base.tensors.has('h.0.attn.bias')).toBe(true);
      expect(merged.tensors.has('h.0.attn.bias')).toBe(false);
      expect(merged.bytes).toBe(disk.bytes);
      expect(rt.memory.live - before).toBe(merged.bytes + disk.bytes);
      const names = forwardWeights(j.base.spec).filter((t) => j.base.tensors.has(t.name)).map((t) => t.name);
      expect([...merged.tensors.keys()].sort()).toEqual([...names].sort());
      for (const name of names) {
        const m = merged.tensors.get(name)!;
        expect(m.dtype).toBe('F32');
        expect(m.shape).toEqual(j.base.tensors.get(name)!.shape);
        const got = new Uint8Array(await rt.read(m.buffer, 0, j.base.tensors.get(name)!.byteLength));
        expect(Buffer.from(got).equals(Buffer.from(await j.base.read(name))), name).toBe(true);
      }
      merged.destroy();
      disk.destroy();
      merged.destroy();
      expect(rt.memory.live).toBe(before);
    });
  });

  it('BF16 merge keeps the base dtype; cancelling mid-stream releases what was collected', async () => {
    const j = await job('tiny-llama', [['tiny-llama-ft-a', 0.7], ['tiny-llama-ft-b', 0.4]]);
    await withGpu(async (rt) => {
      const before = rt.memory.live;
      const merged = await collectMerged(rt, j.base.spec, streamMerge(rt, j, { output: 'gpu' }));
      expect(new Set([...merged.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['BF16']));
      merged.destroy();
      const controller = new AbortController();
      const stream = streamMerge(rt, j, { output: 'gpu', signal: controller.signal, onProgress: (p) => p.done === 5 && controller.abort() });
      await expect(collectMerged(rt, j.base.spec, stream, { signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
      expect(rt.memory.live).toBe(before);
      await expect(uploadCheckpoint(rt, j.base, { signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
      expect(rt.memory.live).toBe(before);
    });
  });
});
