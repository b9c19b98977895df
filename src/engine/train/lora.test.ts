/**
 * LoRA training (train/lora.ts): the graph with factors against the float64 reference forward on
 * W + s·B A (every family; gradients of the factors against finite differences), PEFT's
 * initialisation (step 0 is the base), only the factors train, and the written adapter reads back
 * through io/adapter.ts with the trained update.
 */
import { describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint.ts';
import { bindAdapter, openAdapter, adaptedWeights, ADAPTER_CONFIG_FILE } from '../io/adapter.ts';
import { bytesSource } from '../io/source.ts';
import { decodeToF32 } from '../io/dtypes.ts';
import { architecture } from '../io/weights.ts';
import { folderFileSet } from '../../node/files.ts';
import { mulberry32 } from '../random.ts';
import { buildEvalModel, buildGradientModel } from './artifacts.ts';
import { loraFactors, loraParams, loraTargetNames, type LoraFactor, type LoraSelection } from './lora.ts';
import { modelParams } from './model.ts';
import { batchFeeds, nodeOrt, referenceLoss } from './testing.ts';
import { Trainer, WASM_MEMORY_CAP, estimateTrainingMemory, loadParams, resolveTrainable, trainingParams, writeTrained, type TrainSettings } from './trainer.ts';
import { readFileSync } from 'node:fs';

const ROOT = new URL('../../../', import.meta.url).pathname;
const open = async (name: string): Promise<Checkpoint> => openCheckpoint(await folderFileSet(`${ROOT}e2e/fixtures/${name}`), name);
const B = 2;
const T = 12;

/** W + s·B A per factor in float64, in the base's layout (Conv1D: (in, out)), written out here independently of io/adapter.ts. */
function adapted(ck: Checkpoint, base: Map<string, Float32Array>, factors: readonly LoraFactor[], w: ReadonlyMap<string, ArrayLike<number>>): Map<string, Float64Array> {
  const conv1d = architecture(ck.spec.family).layout === 'conv1d';
  const out = new Map([...base].map(([k, v]) => [k, Float64Array.from(v)]));
  for (const f of factors) {
    const a = w.get(f.a.name)!;
    const b = w.get(f.b.name)!;
    const m = out.get(f.target)!;
    for (let o = 0; o < f.out; o++) {
      for (let i = 0; i < f.in; i++) {
        let s = 0;
        for (let k = 0; k < f.rank; k++) s += b[o * f.rank + k]! * a[k * f.in + i]!;
        m[conv1d ? i * f.out + o : o * f.in + i]! += f.scale * s;
      }
    }
  }
  return out;
}



/** A fixture with a LoRA on every target, both factors random (B ≠ 0, so the update is felt). */
async function setup(fixture: string, rslora = false) {
  const ck = await open(fixture);
  const base = modelParams(ck.spec, (n) => ck.tensors.has(n));
  const sel: LoraSelection = { kind: 'lora', rank: 3, alpha: 5, targets: loraTargetNames(ck.spec), rslora };
  const factors = loraFactors(ck.spec, base, sel);
  const params = [...base, ...loraParams(factors)];
  const w = await loadParams(ck, base);
  const rand = mulberry32(4242);
  for (const p of loraParams(factors)) w.set(p.name, Float32Array.from({ length: p.shape[0]! * p.shape[1]! }, () => 0.3 * (2 * rand() - 1)));
  const seqs = Array.from({ length: B }, () => Array.from({ length: T + 1 }, () => Math.floor(rand() * ck.spec.vocabSize)));
  return { ck, base, sel, factors, params, w, seqs };
}

describe.each(['tiny-gpt2', 'tiny-llama', 'tiny-qwen2', 'tiny-phi3', 'tiny-llama3', 'tiny-qwen3', 'tiny-gemma2', 'tiny-olmo2'])('LoRA graph for %s', (fixture) => {
  it('eval loss with random factors on every target equals the float64 reference on W + s·B A within 1e-4 relative', async () => {
    const ort = await nodeOrt();
    const { ck, base, factors, params, w, seqs } = await setup(fixture, fixture === 'tiny-llama');
    const session = await ort.InferenceSession.create(buildEvalModel(ck.spec, params, { batch: B, seqLen: T }));
    const got = ((await session.run(batchFeeds(ort, params, w, seqs))).loss!.data as Float32Array)[0]!;
    const want = referenceLoss(ck, adapted(ck, new Map(base.map((p) => [p.name, w.get(p.name)!])), factors, w), seqs);
    const without = referenceLoss(ck, adapted(ck, new Map(base.map((p) => [p.name, w.get(p.name)!])), [], w), seqs);
    const rel = Math.abs(got - want) / want;
    console.log(`${fixture}: targets ${loraTargetNames(ck.spec).join(', ')}; ORT ${got} reference ${want} (base ${without}) rel ${rel.toExponential(2)}`);
    expect(rel).toBeLessThan(1e-4);
    // The factors change the loss: the check above sees them.
    expect(Math.abs(without - want) / want).toBeGreaterThan(1e-3);
  });
});

describe.each(['tiny-gpt2', 'tiny-llama', 'tiny-phi3'])('LoRA gradients for %s', (fixture) => {
  it('the factors\' autodiff gradients match central finite differences of the reference loss', async () => {
    const ort = await nodeOrt();
    const { ck, base, factors, params, w, seqs } = await setup(fixture);
    const lora = loraParams(factors);
    const session = await ort.InferenceSession.create(buildGradientModel(ck.spec, params, new Set(lora.map((p) => p.name)), { batch: B, seqLen: T }));
    const out = await session.run(batchFeeds(ort, params, w, seqs));
    const baseW = new Map(base.map((p) => [p.name, w.get(p.name)!]));
    const w64 = new Map([...w].map(([k, v]) => [k, Float64Array.from(v)]));
    const rand = mulberry32(77);
    const h = 1e-3;
    let worst = 0;
    for (const p of lora) {
      const g = out[`${p.name}_grad`]!.data as Float32Array;
      let maxAbs = 0;
      for (const v of g) maxAbs = Math.max(maxAbs, Math.abs(v));
      const idx = [...g.keys()].sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!)).slice(0, 2);
      idx.push(Math.floor(rand() * g.length));
      const x = w64.get(p.name)!;
      for (const i of idx) {
        const keep = x[i]!;
        x[i] = keep + h;
        const up = referenceLoss(ck, adapted(ck, baseW, factors, w64), seqs);
        x[i] = keep - h;
        const down = referenceLoss(ck, adapted(ck, baseW, factors, w64), seqs);
        x[i] = keep;
        const fd = (up - down) / (2 * h);
        worst = Math.max(worst, Math.abs(g[i]! - fd) / Math.max(Math.abs(fd), 0.05 * maxAbs, 1e-6));
      }
    }
    console.log(`${fixture}: max relative gradient error over ${lora.length} factors ${(100 * worst).toPrecision(2)}%`);
    expect(worst).toBeLessThan(0.03);
  });
});

interface BatchesJson {
  settings: { steps: number; batchSize: number; seqLen: number; lr: number; warmupSteps: number; weightDecay: number; minLrRatio: number; heldOutFraction: number; seed: number };
  tokens: number[];
}

describe.each([
  ['tiny-gpt2', { kind: 'lora', rank: 4, alpha: 8, targets: ['c_attn', 'c_fc'] }],
  ['tiny-llama', { kind: 'lora', rank: 2, alpha: 4, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: true }],
] as [string, LoraSelection][])('training a LoRA on %s', (fixture, sel) => {
  it('starts at the base, trains only the factors and writes a PEFT adapter that reads back with the trained update', async () => {
    const ort = await nodeOrt();
    const ck = await open(fixture);
    const job = JSON.parse(readFileSync(`${ROOT}e2e/fixtures/reference/train/${fixture}.batches.json`, 'utf8')) as BatchesJson;
    const settings: TrainSettings = { ...job.settings, steps: 8, lr: 1e-2, trainable: sel, evalEvery: 0, snapshotEvery: 0 };
    const trainer = await Trainer.create(ort, ck, job.tokens, settings);
    const full = await Trainer.create(ort, ck, job.tokens, { ...settings, trainable: { kind: 'all' } });
    try {
      const probe = trainer.data.windows.slice(0, settings.batchSize);
      // B = 0 at step 0: the adapted model is the base, bit for bit.
      expect(await trainer.evalLoss(probe)).toBe(await full.evalLoss(probe));
      const names = trainer.artifacts.trainable.map((p) => p.name);
      expect(names.length).toBe(2 * 2 * sel.targets.length);
      expect(names.every((n) => /\.lora_[AB]\.weight$/.test(n))).toBe(true);
      const init = await trainer.weights();
      for (const p of trainer.artifacts.trainable) {
        const v = init.get(p.name)!;
        if (p.name.includes('lora_B')) expect(v.every((x) => x === 0)).toBe(true);
        else {
          const bound = 1 / Math.sqrt(p.shape[1]!);
          expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(bound);
          expect(Math.max(...v.map(Math.abs))).toBeGreaterThan(0.5 * bound);
        }
      }
      for (let s = 0; s < settings.steps; s++) await trainer.trainStep();
      const after = await trainer.weights();
      const baseW = await loadParams(ck, modelParams(ck.spec, (n) => ck.tensors.has(n)));
      // The frozen weights are the base's, bit for bit.
      for (const [k, v] of baseW) expect(Buffer.compare(Buffer.from(after.get(k)!.buffer), Buffer.from(v.buffer))).toBe(0);

      const files = await writeTrained(ck, sel, after, { dem_steps: '8' });
      expect([...files.keys()].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
      const config = JSON.parse(new TextDecoder().decode(files.get(ADAPTER_CONFIG_FILE)!)) as Record<string, unknown>;
      expect(config).toMatchObject({ peft_type: 'LORA', r: sel.rank, lora_alpha: sel.alpha, use_rslora: sel.rslora === true, target_modules: sel.targets, fan_in_fan_out: fixture === 'tiny-gpt2', base_model_name_or_path: fixture });
      const adapter = await openAdapter(new Map([...files].map(([k, v]) => [k, bytesSource(v, k)])), 'trained');
      const keys = adapter.targets.flatMap((t) => [t.a.key, t.b.key]);
      expect(keys.every((k) => k.startsWith(fixture === 'tiny-gpt2' ? 'base_model.model.transformer.h.' : 'base_model.model.model.layers.'))).toBe(true);
      const bound = bindAdapter(adapter, ck);
      const { lora } = trainingParams(ck.spec, (n) => ck.tensors.has(n), sel);
      expect([...bound.adapter!.targets.keys()].sort()).toEqual(lora!.map((f) => f.target).sort());
      const want = adapted(ck, baseW, lora!, after);
      let worst = 0;
      for (const [tensor, target] of bound.adapter!.targets) {
        // The factors come back bit for bit; the dense update equals the trained one in float64.
        const f = lora!.find((x) => x.target === tensor)!;
        expect(decodeToF32(await bound.adapter!.read(target.a), target.a.dtype)).toEqual(after.get(f.a.name));
        expect(decodeToF32(await bound.adapter!.read(target.b), target.b.dtype)).toEqual(after.get(f.b.name));
        const dense = await adaptedWeights(bound.adapter!, target);
        const w0 = baseW.get(tensor)!;
        const dw = want.get(tensor)!;
        let num = 0;
        let den = 0;
        for (let i = 0; i < dense.length; i++) {
          num = Math.max(num, Math.abs(dense[i]! - w0[i]! - (dw[i]! - w0[i]!)));
          den = Math.max(den, Math.abs(dw[i]! - w0[i]!));
        }
        expect(den).toBeGreaterThan(0);
        worst = Math.max(worst, num / den);
      }
      // The trained model's loss under the runtime equals the reference forward over the adapter's dense view.
      const seqs = probe.map((x) => Array.from(x));
      const dense = new Map<string, Float64Array>();
      for (const p of modelParams(ck.spec, (n) => ck.tensors.has(n))) dense.set(p.name, Float64Array.from(decodeToF32(await bound.read(p.name), bound.tensors.get(p.name)!.dtype)));
      const ortLoss = await trainer.evalLoss(probe);
      const refMean = referenceLoss(ck, dense, seqs);
      const lossRel = Math.abs(ortLoss - refMean) / refMean;
      console.log(`${fixture}: adapter round trip max |ΔPEFT - Δtrained| / max |Δ| = ${worst.toExponential(2)}; ORT loss ${ortLoss} vs reference on the read-back adapter ${refMean} (rel ${lossRel.toExponential(2)})`);
      expect(worst).toBeLessThanOrEqual(1e-6);
      expect(lossRel).toBeLessThan(1e-4);
      expect(ortLoss).not.toBe(await full.evalLoss(probe));
    } finally {
      await trainer.release();
      await full.release();
    }
  });
});

it('refuses a rank above a matrix side, an unknown target and no target, naming the choices', async () => {
  const ck = await open('tiny-gpt2');
  const base = modelParams(ck.spec, (n) => ck.tensors.has(n));
  expect(loraTargetNames(ck.spec)).toEqual(['c_attn', 'c_proj', 'c_fc']);
  expect(loraTargetNames((await open('tiny-llama')).spec)).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
  expect(() => loraFactors(ck.spec, base, { kind: 'lora', rank: 65, alpha: 8, targets: ['c_attn'] })).toThrow(/rank 65 exceeds/);
  expect(() => loraFactors(ck.spec, base, { kind: 'lora', rank: 4, alpha: 8, targets: ['q_proj'] })).toThrow(/'q_proj' are not modules of gpt2 \(c_attn, c_proj, c_fc\)/);
  expect(() => loraFactors(ck.spec, base, { kind: 'lora', rank: 4, alpha: 8, targets: [] })).toThrow(/at least one LoRA target/);
});

it('a base whose full fine-tuning is past the wasm32 heap fits as a LoRA (bench:train\'s large base: SmolLM2-360M\'s shape, 24 layers)', async () => {
  const ck = await open('tiny-llama');
  const spec = { ...ck.spec, vocabSize: 49152, hiddenSize: 960, numLayers: 24, numHeads: 15, numKvHeads: 5, headDim: 64, intermediateSize: 2560, maxPositions: 2048, tieWordEmbeddings: true };
  const estimate = (sel: TrainSettings['trainable']) => {
    const { params } = trainingParams(spec, () => false, sel);
    return estimateTrainingMemory(spec, params, resolveTrainable(spec, params, sel), 1, 64);
  };
  const full = estimate({ kind: 'all' });
  const lora = estimate({ kind: 'lora', rank: 8, alpha: 16, targets: loraTargetNames(spec) });
  expect(full.params).toBe(283_162_560);
  // Weights, gradients and two Adam moments alone (16 B a parameter) are past the cap.
  expect(16 * full.trainable).toBeGreaterThan(WASM_MEMORY_CAP);
  expect(lora.bytes).toBeLessThan(WASM_MEMORY_CAP);
  expect(lora.trainable).toBe(3_256_320);
});
