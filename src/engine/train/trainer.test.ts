/**
 * Training runs in Node through onnxruntime-web's training wasm: loss-curve parity with PyTorch
 * (scripts/torch_train_reference.py on the same batches, committed under
 * e2e/fixtures/reference/train/; a LoRA from the committed initial factors, with --lora), the
 * exported checkpoint, cancellation and the input errors.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CancelledError, InputError } from '../errors.ts';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint.ts';
import { openAdapter } from '../io/adapter.ts';
import { decodeToF32 } from '../io/dtypes.ts';
import { bytesSource } from '../io/source.ts';
import { folderFileSet } from '../../node/files.ts';
import { nodeOrt } from './testing.ts';
import { Trainer, estimateTrainingMemory, fineTune, resolveTrainable, type TrainSettings } from './trainer.ts';
import { modelParams } from './model.ts';
import type { LoraSelection } from './lora.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const open = async (name: string): Promise<Checkpoint> => openCheckpoint(await folderFileSet(`${ROOT}e2e/fixtures/${name}`));

interface BatchesJson {
  settings: { steps: number; batchSize: number; seqLen: number; lr: number; warmupSteps: number; weightDecay: number; minLrRatio: number; heldOutFraction: number; seed: number };
  tokens: number[];
  batches: number[][][];
}
const readJson = <T,>(path: string): T => JSON.parse(readFileSync(`${ROOT}e2e/fixtures/reference/train/${path}`, 'utf8')) as T;

function settingsOf(job: BatchesJson): TrainSettings {
  return { ...job.settings, trainable: { kind: 'all' }, evalEvery: 0, snapshotEvery: 0 };
}

describe.each(['tiny-gpt2', 'tiny-llama'])('training %s', (fixture) => {
  it('follows the PyTorch AdamW loss curve within 2% at every step, and the loss decreases', async () => {
    const ort = await nodeOrt();
    const job = readJson<BatchesJson>(`${fixture}.batches.json`);
    const torch = readJson<{ losses: number[] }>(`${fixture}.torch.json`).losses;
    const trainer = await Trainer.create(ort, await open(fixture), job.tokens, settingsOf(job));
    try {
      // The committed batches are the ones the trainer plans.
      expect(trainer.batches.map((b) => b.map((i) => Array.from(trainer.data.windows[i]!)))).toEqual(job.batches);
      const losses: number[] = [];
      const t0 = performance.now();
      for (let s = 0; s < job.settings.steps; s++) losses.push(await trainer.trainStep());
      const seconds = (performance.now() - t0) / 1000;
      const rel = losses.map((l, i) => Math.abs(l - torch[i]!) / torch[i]!);
      const worst = Math.max(...rel);
      const tps = (job.settings.steps * job.settings.batchSize * job.settings.seqLen) / seconds;
      console.log(
        `${fixture}: ORT ${losses[0]!.toFixed(4)} -> ${losses.at(-1)!.toFixed(4)}, torch ${torch[0]!.toFixed(4)} -> ${torch.at(-1)!.toFixed(4)}; ` +
          `max |ORT - torch| / torch = ${(100 * worst).toExponential(2)}% at step ${rel.indexOf(worst) + 1}; ${tps.toFixed(0)} tokens/s`,
      );
      expect(worst).toBeLessThan(0.02);
      const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
      expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 1);
    } finally {
      await trainer.release();
    }
  });
});

describe.each(['tiny-gpt2', 'tiny-llama'])('training a LoRA on %s', (fixture) => {
  it('starts from the committed initial factors and follows the PyTorch AdamW loss curve within 2% at every step', async () => {
    const ort = await nodeOrt();
    const job = readJson<BatchesJson>(`${fixture}.batches.json`);
    const lora = readJson<{ selection: LoraSelection; lr: number }>(`${fixture}.lora.json`);
    const torch = readJson<{ losses: number[] }>(`${fixture}.lora.torch.json`).losses;
    const trainer = await Trainer.create(ort, await open(fixture), job.tokens, { ...settingsOf(job), lr: lora.lr, trainable: lora.selection });
    try {
      // PyTorch starts from these factors (written by scripts/train-reference-batches.ts): the trainer's own initialisation.
      const init = await openAdapter(await folderFileSet(`${ROOT}e2e/fixtures/reference/train/${fixture}.lora-init`), 'init');
      const weights = await trainer.weights();
      expect(init.targets.length).toBe(trainer.lora!.length);
      for (const t of init.targets) {
        const bytes = async (k: string): Promise<Float32Array> => decodeToF32(await init.files.get('adapter_model.safetensors')!.read(k === 'a' ? t.a.begin : t.b.begin, k === 'a' ? t.a.byteLength : t.b.byteLength), 'F32');
        expect(await bytes('a')).toEqual(weights.get(`${t.module}.lora_A.weight`));
        expect(await bytes('b')).toEqual(weights.get(`${t.module}.lora_B.weight`));
      }
      const losses: number[] = [];
      for (let s = 0; s < job.settings.steps; s++) losses.push(await trainer.trainStep());
      const rel = losses.map((l, i) => Math.abs(l - torch[i]!) / torch[i]!);
      const worst = Math.max(...rel);
      console.log(
        `${fixture} LoRA: ORT ${losses[0]!.toFixed(4)} -> ${losses.at(-1)!.toFixed(4)}, torch ${torch[0]!.toFixed(4)} -> ${torch.at(-1)!.toFixed(4)}; ` +
          `max |ORT - torch| / torch = ${(100 * worst).toExponential(2)}% at step ${rel.indexOf(worst) + 1}`,
      );
      expect(worst).toBeLessThan(0.02);
      const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
      expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.3);
    } finally {
      await trainer.release();
    }
  });
});

describe.each(['tiny-llama3', 'tiny-qwen3', 'tiny-gemma2', 'tiny-olmo2'])('fine-tuning %s in the studio\'s trainer', (fixture) => {
  it('the loss falls over 20 steps and the result reopens with the base names, shapes and dtypes', async () => {
    const ort = await nodeOrt();
    const job = readJson<BatchesJson>('tiny-llama.batches.json');
    const ck = await open(fixture);
    const losses: number[] = [];
    const result = await fineTune({ ort, checkpoint: ck, tokens: job.tokens, settings: { ...settingsOf(job), steps: 20 }, onProgress: (p) => void losses.push(p.loss) });
    const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
    console.log(`${fixture}: loss ${losses[0]!.toFixed(4)} -> ${losses.at(-1)!.toFixed(4)}`);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.5);
    const out = await openCheckpoint(new Map([...result.files].map(([k, v]) => [k, bytesSource(v, k)])));
    expect(out.spec).toEqual(ck.spec);
    for (const [name, ref] of ck.tensors) expect([out.tensors.get(name)?.dtype, out.tensors.get(name)?.shape]).toEqual([ref.dtype, ref.shape]);
  });
});

describe('fineTune', () => {
  const job = readJson<BatchesJson>('tiny-llama.batches.json');
  const base: TrainSettings = { ...settingsOf(job), steps: 6, heldOutFraction: 0.1, evalEvery: 3, snapshotEvery: 3 };

  it('reports progress and held-out loss, snapshots weights and writes a checkpoint with the base names and dtypes', async () => {
    const ort = await nodeOrt();
    const ck = await open('tiny-llama');
    const progress: number[] = [];
    const held: number[] = [];
    const snaps: [number, Map<string, Float32Array>][] = [];
    const result = await fineTune({
      ort, checkpoint: ck, tokens: job.tokens, settings: { ...base, trainable: { kind: 'last-layers', count: 1 } },
      onProgress: (p) => {
        progress.push(p.step);
        if (p.heldOutLoss !== undefined) held.push(p.heldOutLoss);
        expect(p.tokensPerSecond).toBeGreaterThan(0);
      },
      onSnapshot: (s, w) => void snaps.push([s, w]),
    });
    expect(progress).toEqual([1, 2, 3, 4, 5, 6]);
    expect(held.length).toBe(2);
    expect(snaps.map(([s]) => s)).toEqual([3, 6]);
    const out = await openCheckpoint(new Map([...result.files].map(([k, v]) => [k, bytesSource(v, k)])));
    const finalW = snaps[1]![1];
    for (const [name, ref] of ck.tensors) {
      const t = out.tensors.get(name)!;
      expect([t.dtype, t.shape, t.storedName]).toEqual([ref.dtype, ref.shape, ref.storedName]);
    }
    // Layer 0 and the embedding are frozen: bit-identical. Layer 1 moved.
    const same = async (n: string): Promise<boolean> => Buffer.compare(await out.read(n), await ck.read(n)) === 0;
    expect(await same('model.layers.0.self_attn.q_proj.weight')).toBe(true);
    expect(await same('model.embed_tokens.weight')).toBe(true);
    expect(await same('model.layers.1.self_attn.q_proj.weight')).toBe(false);
    expect(finalW.get('model.layers.0.mlp.up_proj.weight')).toBeDefined();
  });

  it('cancels with CancelledError and returns nothing', async () => {
    const ort = await nodeOrt();
    const ctl = new AbortController();
    const run = fineTune({ ort, checkpoint: await open('tiny-gpt2'), tokens: job.tokens, settings: base, signal: ctl.signal, onProgress: (p) => p.step === 2 && ctl.abort() });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
  });

  it('refuses text shorter than one batch, a model above the wasm32 cap, and bad layer counts with InputError', async () => {
    const ort = await nodeOrt();
    const ck = await open('tiny-gpt2');
    await expect(Trainer.create(ort, ck, job.tokens.slice(0, 40), base)).rejects.toThrow(/one batch of 4 x 16 needs at least 65 training tokens/);
    await expect(Trainer.create(ort, ck, [], base)).rejects.toBeInstanceOf(InputError);
    await expect(Trainer.create(ort, ck, job.tokens, { ...base, trainable: { kind: 'last-layers', count: 3 } })).rejects.toThrow(/1\.\.2/);
    const params = modelParams(ck.spec, (n) => ck.tensors.has(n));
    // A 7B-like shape: weights alone exceed 4 GiB.
    const big = { ...ck.spec, vocabSize: 32000, hiddenSize: 4096, numLayers: 32, numHeads: 32, numKvHeads: 32, headDim: 128, intermediateSize: 11008, maxPositions: 4096 };
    const bigParams = modelParams(big, () => false);
    expect(estimateTrainingMemory(big, bigParams, resolveTrainable(big, bigParams, { kind: 'all' }), 1, 128).bytes).toBeGreaterThan(4 * 1024 ** 3);
    expect(estimateTrainingMemory(ck.spec, params, new Set(params.map((p) => p.name)), 4, 16).bytes).toBeLessThan(4 * 1024 ** 3);
    const bigCk: Checkpoint = { ...ck, spec: big, tensors: new Map() };
    await expect(Trainer.create(ort, bigCk, job.tokens, { ...base, seqLen: 16 })).rejects.toThrow(/above the 4 GiB wasm32 limit/);
    await expect(Trainer.create(ort, bigCk, job.tokens, { ...base, seqLen: 16 })).rejects.toThrow(/or a LoRA adapter \(the base frozen\)/);
  });
});
