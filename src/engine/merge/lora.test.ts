import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { folderFileSet } from '../../node/files.ts';
import { withGpu } from '../../testing/gpu.ts';
import { bindAdapter, openAdapter } from '../io/adapter.ts';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint.ts';
import { decodeToF32, storageBytes } from '../io/dtypes.ts';
import { readSafetensorsHeader } from '../io/safetensors.ts';
import { bytesSource } from '../io/source.ts';
import { resolveTensorParams } from './coefficients.ts';
import { tensorRowsBytes } from '../kernels/mergeRows.ts';
import { floatDtypeOf, streamMerge } from './execute.ts';
import { factoredBytes, FactoredMerge } from './factored.ts';
import { parseRecipe, type MergeRecipe } from './recipe.ts';
import { residentBytes } from './resident.ts';
import { METHODS } from './registry.ts';
import { compareOutput, signElection } from './testkit.ts';

/**
 * LoRA adapters merged with full fine-tunes, F32 output, against float64 references:
 * - task_arithmetic against the whole merged model scripts/make_lora_fixtures.py computed in
 *   PyTorch float64 from the adapter files (independent of the engine);
 * - every method against its float64 `cpu` on the same inputs, the adapter's dense tensors taken
 *   from that script's float64 θ + s·B A.
 * Bounds, per tensor: every element within the F32 tolerance of the method tests (testkit
 * compareOutput: |gpu − ref| <= 1e-6 + 1e-6·|ref|), and max |gpu − ref| / max |ref| <= 1e-6
 * (the error relative to the tensor's scale; recorded as the worst error).
 */
const FIX = resolve('e2e/fixtures');
const open = async (name: string): Promise<Checkpoint> => openCheckpoint(await folderFileSet(resolve(FIX, name)), name);
const adapter = async (name: string, base: Checkpoint): Promise<Checkpoint> => bindAdapter(await openAdapter(await folderFileSet(resolve(FIX, name)), name), base);

async function readF64(path: string): Promise<Map<string, Float64Array>> {
  const bytes = new Uint8Array(readFileSync(path));
  const header = await readSafetensorsHeader(bytesSource(bytes, path));
  return new Map(header.tensors.map((t) => [t.name, new Float64Array(bytes.slice(header.dataStart + t.begin, header.dataStart + t.end).buffer)]));
}

/** max |got − want| / max |want| over a tensor, after every element passed compareOutput's F32 bound. */
function relError(got: Uint8Array, want: Float64Array, what: string): number {
  expect(compareOutput(got.slice().buffer, want, 'F32').mismatches, what).toEqual([]);
  const values = decodeToF32(got, 'F32');
  let scale = 0;
  let err = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    err = Math.max(err, Math.abs(values[i]! - want[i]!));
  }
  return err / scale;
}

const PARAMS: Record<string, Record<string, unknown>> = {
  task_arithmetic: { lambda: 0.9 },
  linear: {},
  ties: { density: 0.5, lambda: 1.2 },
  dare_linear: { density: 0.6, seed: 7 },
  dare_ties: { density: 0.6, normalize: true, seed: 7 },
  breadcrumbs: { density: 0.8, gamma: 0.05 },
  breadcrumbs_ties: { density: 0.8, gamma: 0.02 },
  slerp: { t: 0.3 },
  model_stock: {},
};

const CASES = [
  { base: 'tiny-gpt2', full: 'tiny-gpt2-ft-a', lora: 'tiny-gpt2-lora', merge: 'merge-gpt2-ft-a0.7-lora0.5' },
  { base: 'tiny-llama', full: 'tiny-llama-ft-a', lora: 'tiny-llama-lora', merge: 'merge-llama-ft-a0.6-lora-0.8' },
];

const stats: string[] = [];
afterAll(() => console.log(`LoRA merges, worst relative error:\n${stats.join('\n')}`));

describe.each(CASES)('$lora merged with $full', ({ base: baseName, full, lora, merge }) => {
  it('task_arithmetic equals the PyTorch float64 merge of the whole model', async () => {
    await withGpu(async (rt) => {
      const base = await open(baseName);
      const models = [await open(full), await adapter(lora, base)];
      const spec = JSON.parse(readFileSync(resolve(FIX, 'reference', 'lora', `${merge}.json`), 'utf8')) as { models: { model: string; weight: number }[] };
      expect(spec.models.map((m) => m.model)).toEqual([full, lora]);
      const recipe = parseRecipe({ version: 1, method: 'task_arithmetic', base: baseName, models: spec.models.map((m) => ({ model: m.model, parameters: { weight: m.weight } })), parameters: {}, dtype: 'float32' });
      const ref = await readF64(resolve(FIX, 'reference', 'lora', `${merge}.safetensors`));
      let worst = 0;
      let merged = 0;
      for await (const t of streamMerge(rt, { recipe, base, models }, { output: 'bytes' })) {
        if (!t.merged) continue;
        const want = ref.get(t.ref.storedName);
        expect(want, t.ref.storedName).toBeDefined();
        worst = Math.max(worst, relError(t.data!, want!, t.ref.storedName));
        merged++;
      }
      expect(merged).toBe([...base.tensors.values()].filter((t) => t.kind === 'param').length);
      expect(worst).toBeLessThanOrEqual(1e-6);
      stats.push(`${merge} (whole model, PyTorch): ${worst.toExponential(2)}`);
    });
  });

  for (const method of METHODS) {
    it(`${method.name}: GPU against the method's float64 reference`, async () => {
      await withGpu(async (rt) => {
        const base = await open(baseName);
        const adapted = await adapter(lora, base);
        const fullCkpt = await open(full);
        const models = method.maxModels === 1 ? [adapted] : [fullCkpt, adapted];
        const weights = method.maxModels === 1 ? [undefined] : [0.7, 0.5];
        const recipe = parseRecipe({
          version: 1,
          method: method.name,
          base: baseName,
          models: models.map((m, i) => ({ model: m.name, parameters: weights[i] === undefined || !method.params.some((p) => p.name === 'weight') ? {} : { weight: weights[i] } })),
          parameters: PARAMS[method.name] ?? {},
          dtype: 'float32',
        });
        const dense = await readF64(resolve(FIX, 'reference', 'lora', `${lora}.safetensors`));
        let worst = 0;
        let ambiguous = 0;
        for await (const t of streamMerge(rt, { recipe, base, models }, { output: 'bytes' })) {
          if (!t.merged) continue;
          const values = async (c: Checkpoint): Promise<Float64Array> => Float64Array.from(decodeToF32(await c.read(t.ref.name), c.tensors.get(t.ref.name)!.dtype));
          const theta = await values(base);
          const inputs = await Promise.all(models.map(async (m) => (m === adapted ? (dense.get(t.ref.storedName) ?? theta) : values(m))));
          const resolved = resolveTensorParams(recipe, t.ref.storedName, t.ref.layer, base.spec.numLayers);
          const ctx = { tensorIndex: t.index, tensor: t.ref.storedName };
          const want = method.cpu(method.capabilities.needsBase ? theta : undefined, inputs, resolved.weights, resolved.params, ctx);
          const election = signElection(method, theta, inputs, resolved.weights, resolved.params, ctx);
          ambiguous += election?.ambiguous ?? 0;
          const e = relError(t.data!, election ? election.pick(decodeToF32(t.data!, 'F32'), want) : want, t.ref.storedName);
          expect(e, t.ref.storedName).toBeLessThanOrEqual(1e-6);
          worst = Math.max(worst, e);
        }
        stats.push(`${lora} ${method.name}: ${worst.toExponential(2)}${ambiguous ? ` (${ambiguous} coin-flip signs)` : ''}`);
      });
    });
  }
});

describe.each(CASES)('$lora resident in factored form (FactoredMerge, task_arithmetic)', ({ base: baseName, full, lora, merge }) => {
  it('matches the PyTorch float64 merge and holds the factors, not a dense Δ, on the GPU', async () => {
    await withGpu(async (rt) => {
      const base = await open(baseName);
      const models = [await open(full), await adapter(lora, base)];
      const spec = JSON.parse(readFileSync(resolve(FIX, 'reference', 'lora', `${merge}.json`), 'utf8')) as { models: { model: string; weight: number }[] };
      const recipe = (dtype?: string): MergeRecipe =>
        parseRecipe({ version: 1, method: 'task_arithmetic', base: baseName, models: spec.models.map((m) => ({ model: m.model, parameters: { weight: m.weight } })), parameters: {}, ...(dtype ? { dtype } : {}) });
      const ref = await readF64(resolve(FIX, 'reference', 'lora', `${merge}.safetensors`));
      const before = rt.memory.live;
      rt.resetPeak();
      const resident = await FactoredMerge.create(rt, base, models);
      try {
        const need = factoredBytes(rt.limits, base, models, 'F32');
        const dense = residentBytes(base, models, rt.limits);
        // Factors only: every adapted matrix costs r·(in + out) elements, and the dense rows hold only the full fine-tune's θ (as stored) and the adapter's replacements.
        const adapted = models[1]!.adapter!;
        expect(need.factors).toBe([...adapted.targets.values()].reduce((s, t) => s + t.a.byteLength + t.b.byteLength, 0));
        expect(resident.memory.factors).toBe(need.factors);
        const params = [...base.tensors.values()].filter((t) => t.kind === 'param');
        const rowsOf = (name: string, members: readonly Checkpoint[]): number => tensorRowsBytes(rt.limits, members.map((m) => floatDtypeOf(m.tensors.get(name)!)), params.find((t) => t.name === name)!.shape.reduce((a, b) => a * b, 1));
        const denseRows = params.reduce((s, t) => s + rowsOf(t.name, adapted.replaced.has(t.name) ? models : [models[0]!]), 0);
        expect(resident.memory.deltas).toBe(denseRows);
        expect(dense.rows).toBe(params.reduce((s, t) => s + rowsOf(t.name, models), 0));
        const out = await resident.merge(recipe('float32'));
        expect(rt.memory.live - before).toBe(need.total);
        expect(rt.memory.peak - before).toBeLessThan(dense.total);
        let worst = 0;
        for (const [name, t] of out) {
          const planned = base.tensors.get(name)!;
          if (planned.kind !== 'param') continue;
          expect(t.dtype).toBe('F32');
          worst = Math.max(worst, relError(new Uint8Array(await rt.read(t.buffer, 0, t.shape.reduce((a, b) => a * b, 1) * 4)), ref.get(planned.storedName)!, name));
        }
        expect(worst).toBeLessThanOrEqual(1e-6);
        stats.push(
          `${merge} FactoredMerge F32: ${worst.toExponential(2)}; resident ${need.total} bytes (factors ${need.factors}, dense rows ${need.deltas}) vs ${dense.total} with every row dense (${dense.rows}); peak ${rt.memory.peak - before}`,
        );
        // The base's dtype out (BF16 for Llama): the f32 sum rounded once, within an ulp of the reference.
        const narrow = await resident.merge(recipe());
        for (const [name, t] of narrow) {
          const planned = base.tensors.get(name)!;
          if (planned.kind !== 'param') continue;
          expect(t.dtype).toBe(planned.dtype);
          const n = t.shape.reduce((a, b) => a * b, 1);
          const cmp = compareOutput(await rt.read(t.buffer, 0, storageBytes(t.dtype, n)), ref.get(planned.storedName)!, t.dtype);
          expect(cmp.mismatches, name).toEqual([]);
        }
        await expect(resident.merge(parseRecipe({ version: 1, method: 'ties', base: baseName, models: spec.models.map((m) => ({ model: m.model, parameters: { weight: m.weight } })), parameters: { density: 0.5 } }))).rejects.toThrow(
          /ties' needs every distribution vector dense/,
        );
      } finally {
        resident.destroy();
      }
    });
  });
});
