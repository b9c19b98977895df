import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { folderFileSet } from '../../node/files.ts';
import { testRuntime } from '../../testing/gpu.ts';
import { GpuOutOfMemoryError } from '../errors.ts';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint.ts';
import { parseConfig } from '../io/config.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { bytesSource } from '../io/source.ts';
import { expectedTensors } from '../io/weights.ts';
import { planMerge, streamMerge, type MergeJob } from './execute.ts';
import { parseRecipe } from './recipe.ts';

/**
 * The streaming executor under a GPU memory budget: a merge of a checkpoint several times larger
 * than the budget completes tensor by tensor with the runtime's peak under the budget, and gives
 * the same bytes as an unbudgeted merge; a budget below one tensor's working set fails with a
 * GpuOutOfMemoryError that names the tensor.
 */
const FIX = resolve('e2e/fixtures');

async function open(name: string): Promise<Checkpoint> {
  return openCheckpoint(await folderFileSet(resolve(FIX, name)), name);
}

/**
 * A deeper GPT-2 than the fixture (12 layers, V = 64, P = 16) in memory, so that no tensor is a
 * large share of the model: wte is 8 KiB of a ~600 KiB checkpoint. Fine-tunes: base + small noise.
 */
function deepGpt2(noiseSeed?: number): Promise<Checkpoint> {
  const config = { ...JSON.parse(readFileSync(resolve(FIX, 'tiny-gpt2/config.json'), 'utf8')), n_layer: 12, vocab_size: 64, n_positions: 16, bos_token_id: 63, eos_token_id: 63 };
  const spec = parseConfig(config);
  const lcg = (seed: number): (() => number) => {
    let state = seed;
    return () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 2 ** 32 - 0.5;
    };
  };
  const base = lcg(1);
  const noise = lcg(noiseSeed ?? 0);
  const entries = expectedTensors(spec)
    .filter((t) => !t.optional)
    .map((t) => {
      const values = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < values.length; i++) values[i] = base() * 0.2 + (noiseSeed === undefined || t.kind !== 'param' ? 0 : noise() * 0.02);
      return { name: `transformer.${t.name}`, dtype: 'F32' as const, shape: t.shape, data: new Uint8Array(values.buffer) };
    });
  const files = new Map([
    ['config.json', bytesSource(new TextEncoder().encode(JSON.stringify(config)), 'config.json')],
    ['model.safetensors', bytesSource(writeSafetensors(entries), 'model.safetensors')],
  ]);
  return openCheckpoint(files, noiseSeed === undefined ? 'deep-gpt2' : `deep-ft-${noiseSeed}`);
}

async function gpt2Job(method = 'ties', deep = false): Promise<MergeJob> {
  const base = deep ? await deepGpt2() : await open('tiny-gpt2');
  const models = deep ? await Promise.all([2, 3, 4].map((s) => deepGpt2(s))) : await Promise.all(['a', 'b', 'c'].map((s) => open(`tiny-gpt2-ft-${s}`)));
  const recipe = parseRecipe({
    version: 1,
    method,
    base: base.name,
    models: models.map((m, i) => ({ model: m.name, parameters: { weight: [0.5, 0.3, 0.9][i], ...(method === 'task_arithmetic' ? {} : { density: 0.5 }) } })),
    parameters: {},
  });
  return { recipe, base, models };
}

/** Total bytes of the checkpoints the merge reads. */
function inputBytes(job: MergeJob): number {
  return [job.base, ...job.models].reduce((s, c) => s + [...c.tensors.values()].reduce((t, r) => t + r.byteLength, 0), 0);
}

async function mergeAll(budget: number | undefined, job: MergeJob): Promise<{ bytes: Map<string, Uint8Array>; peak: number }> {
  const rt = await testRuntime(budget === undefined ? { label: 'unbudgeted' } : { memoryBudget: budget });
  try {
    const bytes = new Map<string, Uint8Array>();
    for await (const t of streamMerge(rt, job, { output: 'bytes' })) bytes.set(t.ref.name, t.data!);
    expect(rt.memory.live).toBe(0);
    return { bytes, peak: rt.memory.peak };
  } finally {
    rt.destroy();
  }
}

describe('streamMerge under a GPU memory budget', () => {
  it('a budget of a third of the model completes with the peak under it, bytes equal to the unbudgeted merge', async () => {
    const job = await gpt2Job('dare_ties', true);
    const model = [...job.base.tensors.values()].reduce((s, r) => s + r.byteLength, 0);
    const budget = Math.floor(model / 3);
    const free = await mergeAll(undefined, job);
    const capped = await mergeAll(budget, job);
    console.log(`12-layer gpt2, dare_ties of 3: base ${model} bytes, all inputs ${inputBytes(job)} bytes; budget ${budget}, peak ${capped.peak} (unbudgeted peak ${free.peak})`);
    expect(capped.peak).toBeLessThanOrEqual(budget);
    expect(capped.peak).toBeGreaterThan(0);
    expect(capped.bytes.size).toBe(job.base.tensors.size);
    for (const [name, data] of free.bytes) expect(Buffer.from(capped.bytes.get(name)!).equals(Buffer.from(data)), name).toBe(true);
  });

  it('a budget below one tensor fails with GpuOutOfMemoryError naming the tensor', async () => {
    const job = await gpt2Job('task_arithmetic');
    // Below a single c_attn weight (32 × 96 f32 = 12288 bytes) and wte; biases and norms still fit.
    const budget = 10_000;
    const rt = await testRuntime({ memoryBudget: budget });
    try {
      const seen: string[] = [];
      const error = await (async () => {
        for await (const t of streamMerge(rt, job, { output: 'bytes' })) seen.push(t.ref.storedName);
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(GpuOutOfMemoryError);
      const e = error as GpuOutOfMemoryError;
      const failed = planMerge(job)[seen.length]!;
      expect(e.tensor).toBe(failed.ref.storedName);
      expect(e.message).toContain(`tensor '${failed.ref.storedName}': merging this tensor needs about`);
      expect(e.message).toContain(`the budget is ${budget} bytes`);
      console.log(`budget ${budget}: ${seen.length} tensors merged, then: ${e.message}`);
      expect(rt.memory.live).toBe(0);
      expect(rt.memory.peak).toBeLessThanOrEqual(budget);
    } finally {
      rt.destroy();
    }
  });

  it('the plan is the writer order: larger dtypes first, then by stored name; DARE index = base order', async () => {
    const job = await gpt2Job('task_arithmetic');
    const plan = planMerge(job);
    const names = plan.map((t) => t.ref.storedName);
    expect(names).toEqual([...names].sort());
    const baseOrder = [...job.base.tensors.keys()];
    for (const t of plan) expect(t.index).toBe(baseOrder.indexOf(t.ref.name));
    const f16 = planMerge({ ...job, recipe: { ...job.recipe, dtype: 'float16' } });
    // F32 buffers (attn.bias, masked_bias) come before the merged F16 tensors; indices unchanged.
    expect(f16.slice(0, 4).every((t) => !t.merged && t.dtype === 'F32')).toBe(true);
    for (const t of f16) expect(t.index).toBe(baseOrder.indexOf(t.ref.name));
  });
});
