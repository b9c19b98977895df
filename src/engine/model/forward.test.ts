import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import type { ModelSpec } from '../io/spec.ts';
import { forwardWeights } from '../io/weights.ts';
import type { FloatDType } from '../io/dtypes.ts';
import { IncompatibleCheckpointError, InputError } from '../errors.ts';
import type { GpuTensor } from '../gpu/tensor.ts';
import { GpuModel } from './forward.ts';
import { perplexity } from './perplexity.ts';
import { referenceForward } from './reference.ts';
import { asStored, checkClose, freshSeed, randn, rng } from './testutil.ts';

const base = { maxPositions: 40, normEps: 1e-5, ropeTheta: 10000, mlpBias: false } as const;

const GPT2: ModelSpec = {
  ...base, modelType: 'gpt2', family: 'gpt2', vocabSize: 301, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 4, headDim: 8,
  intermediateSize: 128, norm: 'layernorm', activation: 'gelu_new', positions: 'learned', attnBias: true, mlpBias: true, tieWordEmbeddings: true,
};
const LLAMA_GQA: ModelSpec = {
  ...base, modelType: 'qwen2', family: 'llama', vocabSize: 301, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8,
  intermediateSize: 72, norm: 'rmsnorm', normEps: 1e-6, activation: 'silu', positions: 'rope', attnBias: true, tieWordEmbeddings: false,
};
const LLAMA_TIED: ModelSpec = { ...LLAMA_GQA, modelType: 'llama', numKvHeads: 4, attnBias: false, tieWordEmbeddings: true, ropeTheta: 500000 };
// Fused qkv_proj (q | k | v rows) and gate_up_proj (gate | up rows) read in place; a sliding window shorter than the windows.
const PHI3: ModelSpec = { ...LLAMA_GQA, modelType: 'phi3', family: 'phi3', attnBias: false, attnOutBias: false, normEps: 1e-5, slidingWindow: 5 };
const PHI3_TIED: ModelSpec = { ...PHI3, numKvHeads: 4, tieWordEmbeddings: true, slidingWindow: undefined };
// Llama 3.x RoPE (Llama-3.2-1B's scaling with its original 8192 positions scaled to 16, so all three bands act here), tied.
const LLAMA3: ModelSpec = {
  ...LLAMA_TIED, numKvHeads: 2, headDim: 16, numHeads: 4, ropeTheta: 500000,
  ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 16 },
};
const LLAMA3_UNTIED: ModelSpec = { ...LLAMA3, tieWordEmbeddings: false };
// Qwen2.5's yarn (factor 4) over an original context of 8, q/k/v bias, untied.
const QWEN2_YARN: ModelSpec = {
  ...LLAMA_GQA, ropeTheta: 1e6,
  ropeScaling: { type: 'yarn', factor: 4, originalMaxPositions: 8, attentionFactor: 0.1 * Math.log(4) + 1, betaFast: 32, betaSlow: 1, truncate: true },
};
// Dynamic NTK beyond 10 positions: the 13-token windows get other frequencies than the 7-token one.
const LLAMA_DYNAMIC: ModelSpec = { ...LLAMA_GQA, modelType: 'llama', attnBias: false, maxPositions: 10, ropeScaling: { type: 'dynamic', factor: 2 } };
// Qwen3: head_dim 16 (NH·HS = 64 ≠ C = 32), RMSNorm over each head of q and k before RoPE, tied.
const QWEN3: ModelSpec = { ...LLAMA_GQA, modelType: 'qwen3', family: 'qwen3', headDim: 16, attnBias: false, attnOutBias: false, tieWordEmbeddings: true, qkNorm: 'head' };
// Gemma 2, caps scaled down so they bend these random weights' scores and logits.
const GEMMA2: ModelSpec = {
  ...LLAMA_GQA, modelType: 'gemma2', family: 'gemma2', headDim: 16, attnBias: false, attnOutBias: false, tieWordEmbeddings: true, activation: 'gelu_new',
  normPlusOne: true, embedScale: Math.sqrt(32), attnScale: 1 / Math.sqrt(12), attnSoftcap: 2, finalSoftcap: 3, slidingWindow: 5, slidingLayers: [true, false],
};
// OLMo 2: no pre-norms, post-norms on both sub-blocks, q/k RMSNorm over the whole projection, untied.
const OLMO2: ModelSpec = { ...LLAMA_GQA, modelType: 'olmo2', family: 'olmo2', attnBias: false, attnOutBias: false, qkNorm: 'projection' };

/** Random weights for `spec` in `dtype`: GPU buffers of the stored bytes and their exact float64 decoding. */
function makeWeights(rt: GpuRuntime, spec: ModelSpec, dtype: FloatDType, seed: number): { gpu: Map<string, GpuTensor>; ref: Map<string, Float64Array> } {
  const next = rng(seed);
  const gpu = new Map<string, GpuTensor>();
  const ref = new Map<string, Float64Array>();
  for (const t of forwardWeights(spec)) {
    if (t.optional) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    const isNorm = t.role.includes('norm') && !t.role.endsWith('.bias');
    const values = isNorm ? randn(next, n, 0.1).map((v) => 1 + v) : t.role.endsWith('.bias') ? randn(next, n, 0.1) : randn(next, n, t.shape[0] === spec.vocabSize ? 0.5 : 0.25);
    const stored = asStored(values, dtype);
    gpu.set(t.name, { buffer: rt.upload(t.name, stored.bytes), dtype, shape: t.shape });
    ref.set(t.name, stored.values);
  }
  return { gpu, ref };
}

function randomIds(next: () => number, n: number, V: number): number[] {
  return Array.from({ length: n }, () => Math.floor(Math.abs(next()) * 7919) % V);
}

const relErr = (got: number, want: number): number => Math.abs(got - want) / Math.abs(want);

describe('GpuModel vs the float64 reference', () => {
  const cases: [string, ModelSpec, FloatDType][] = [
    ['GPT-2 (L=2, C=32, NH=4, V=301), F32', GPT2, 'F32'],
    ['GPT-2, BF16', GPT2, 'BF16'],
    ['qwen2-style Llama (GQA 4/2, q/k/v bias, untied head), BF16', LLAMA_GQA, 'BF16'],
    ['Llama (tied head, no bias, theta 5e5), F16', LLAMA_TIED, 'F16'],
    ['Phi-3 (fused qkv and gate_up, GQA 4/2, sliding window 5, untied head), BF16', PHI3, 'BF16'],
    ['Phi-3 (tied head, no window), F32', PHI3_TIED, 'F32'],
    ['Llama 3.x (rope llama3, GQA 4/2, HS 16, tied head), BF16', LLAMA3, 'BF16'],
    ['Llama 3.x (rope llama3, untied head), F16', LLAMA3_UNTIED, 'F16'],
    ['Qwen2.5 (rope yarn factor 4, attention factor 1.14, q/k/v bias), BF16', QWEN2_YARN, 'BF16'],
    ['Llama (rope dynamic factor 2 beyond 10 positions), F32', LLAMA_DYNAMIC, 'F32'],
    ['Qwen3 (q_norm/k_norm per head, head_dim 16 ≠ C/NH, tied), BF16', QWEN3, 'BF16'],
    ['Gemma 2 (√C embedding, (1 + w) norms, 4 norms per block, GeGLU, soft caps, alternating window 5, query scale), BF16', GEMMA2, 'BF16'],
    ['OLMo 2 (post-norms only, q/k norms over the projection, untied), F32', OLMO2, 'F32'],
  ];
  for (const [name, spec, dtype] of cases) {
    it(`${name}: batched window NLL (relative error ≤ 1e-4)`, async () => {
      const seed = freshSeed();
      const next = rng(seed + 1);
      // Windows of unequal length in one batch (padding), a vocabulary chunk that splits V unevenly.
      const windows = [randomIds(next, 13, spec.vocabSize), randomIds(next, 13, spec.vocabSize), randomIds(next, 7, spec.vocabSize)];
      const { batch, single } = await withGpu(async (rt) => {
        const w = makeWeights(rt, spec, dtype, seed);
        const model = await GpuModel.create(rt, spec, w.gpu, { maxContext: 16, maxBatch: 2, vocabChunk: 128 });
        const batch = await model.nllBatch(windows);
        const single = await model.nll(windows[2]!);
        model.destroy();
        const want = windows.map((ids) => referenceForward(spec, w.ref, ids).nll);
        return { batch: { ...batch, want }, single };
      });
      const wantSums = batch.want.map((n) => n.reduce((a, b) => a + b, 0));
      const wantTotal = wantSums.reduce((a, b) => a + b, 0);
      expect(batch.count).toBe(12 + 12 + 6);
      const err = relErr(batch.nllSum, wantTotal);
      console.log(`${name}: NLL sum ${batch.nllSum.toFixed(6)} vs ${wantTotal.toFixed(6)}, relative error ${err.toExponential(2)} (seed ${seed})`);
      expect(err, `seed ${seed}`).toBeLessThanOrEqual(1e-4);
      checkClose('per-window NLL', batch.perWindow, wantSums, 0, 1e-4, seed);
      expect(single.count).toBe(6);
      expect(relErr(single.nllSum, wantSums[2]!), `seed ${seed}`).toBeLessThanOrEqual(1e-4);
    });
  }

  // Not the dynamic case: with a cache, keys stored at one length keep their rotation when the
  // sequence grows past max_position_embeddings (as in transformers), unlike a fresh forward.
  for (const [name, spec, dtype] of [cases[0]!, cases[2]!, cases[4]!, cases[6]!, cases[8]!, cases[10]!, cases[11]!, cases[12]!]) {
    it(`${name}: last-position logits, with and without a KV cache`, async () => {
      const seed = freshSeed();
      const ids = randomIds(rng(seed + 1), 11, spec.vocabSize);
      const { full, steps, want } = await withGpu(async (rt) => {
        const w = makeWeights(rt, spec, dtype, seed);
        const model = await GpuModel.create(rt, spec, w.gpu, { maxContext: 16 });
        const full = await model.logitsLast(ids);
        // Prefill 8 tokens, then decode the remaining 3 one at a time.
        const cache = model.createKvCache(12);
        const steps = [await model.logitsLast(ids.slice(0, 8), cache)];
        for (let t = 8; t < ids.length; t++) steps.push(await model.logitsLast([ids[t]!], cache));
        expect(cache.length).toBe(11);
        await expect(model.logitsLast([1, 2], cache)).rejects.toBeInstanceOf(InputError);
        cache.release();
        model.destroy();
        const want = (n: number): Float64Array => referenceForward(spec, w.ref, ids.slice(0, n)).logits.slice((n - 1) * spec.vocabSize, n * spec.vocabSize);
        return { full, steps, want };
      });
      const V = spec.vocabSize;
      checkClose('logitsLast (no cache)', full, want(11), 1e-4, 1e-4, seed);
      checkClose('logitsLast after prefill', steps[0]!, want(8), 1e-4, 1e-4, seed);
      for (let s = 1; s < steps.length; s++) checkClose(`logitsLast decode step ${s}`, steps[s]!, want(8 + s), 1e-4, 1e-4, seed);
      expect(full.length).toBe(V);
    });
  }

  for (const [name, spec, dtype] of [cases[0]!, cases[2]!, cases[4]!]) {
    it(`${name}: spanNll scores each span's tail token by token (maxContext + 1 tokens, batches of 2)`, async () => {
      const seed = freshSeed();
      const next = rng(seed + 1);
      // A full-length span (17 = maxContext + 1: its last token is only a target), a one-token
      // tail, and a short span padded in the second batch.
      const spans = [
        { ids: randomIds(next, 17, spec.vocabSize), from: 12 },
        { ids: randomIds(next, 9, spec.vocabSize), from: 8 },
        { ids: randomIds(next, 6, spec.vocabSize), from: 1 },
      ];
      const { got, want } = await withGpu(async (rt) => {
        const w = makeWeights(rt, spec, dtype, seed);
        const model = await GpuModel.create(rt, spec, w.gpu, { maxContext: 16, maxBatch: 2, vocabChunk: 128 });
        const got = await model.spanNll(spans);
        await expect(model.spanNll([{ ids: randomIds(next, 18, spec.vocabSize), from: 17 }])).rejects.toBeInstanceOf(InputError);
        await expect(model.spanNll([{ ids: [1, 2, 3], from: 0 }])).rejects.toBeInstanceOf(InputError);
        await expect(model.spanNll([{ ids: [1, 2, 3], from: 3 }])).rejects.toBeInstanceOf(InputError);
        model.destroy();
        // The reference's nll[t − 1] is token t's, predicted from tokens 0..t−1.
        const want = spans.map((s) => referenceForward(spec, w.ref, [...s.ids]).nll.slice(s.from - 1));
        return { got, want };
      });
      expect(got.map((g) => g.length)).toEqual([5, 1, 5]);
      const worst = Math.max(...got.map((g, i) => checkClose(`span ${i} NLL`, g, want[i]!, 1e-5, 1e-4, seed)));
      console.log(`${name}: spanNll per-token worst relative error ${worst.toExponential(2)} (seed ${seed})`);
    });
  }

  it('scores perplexity() windows as perplexity.ts defines them (context 9 over 30 tokens)', async () => {
    const seed = freshSeed();
    const ids = randomIds(rng(seed + 1), 30, LLAMA_GQA.vocabSize);
    const { got, want } = await withGpu(async (rt) => {
      const w = makeWeights(rt, LLAMA_GQA, 'F32', seed);
      const model = await GpuModel.create(rt, LLAMA_GQA, w.gpu, { maxContext: 9 });
      const got = await perplexity(model, ids, { context: 9, batchWindows: 3 });
      model.destroy();
      // Windows 9, 9, 9, 3 tokens: 8 + 8 + 8 + 2 predictions.
      let nll = 0;
      for (let s = 0; s < ids.length; s += 9) nll += referenceForward(LLAMA_GQA, w.ref, ids.slice(s, s + 9)).nll.reduce((a, b) => a + b, 0);
      return { got, want: nll };
    });
    expect(got.predicted).toBe(26);
    expect(relErr(got.nllSum, want), `seed ${seed}`).toBeLessThanOrEqual(1e-4);
  });

  it('rejects missing tensors, wrong shapes and out-of-vocabulary ids with typed errors', async () => {
    await withGpu(async (rt) => {
      const w = makeWeights(rt, GPT2, 'F32', 1);
      const bad = new Map(w.gpu);
      bad.delete('h.1.mlp.c_fc.bias');
      await expect(GpuModel.create(rt, GPT2, bad)).rejects.toThrow(/h\.1\.mlp\.c_fc\.bias/);
      const wrong = new Map(w.gpu);
      wrong.set('h.0.attn.c_attn.weight', { ...w.gpu.get('h.0.attn.c_attn.weight')!, shape: [96, 32] });
      await expect(GpuModel.create(rt, GPT2, wrong)).rejects.toBeInstanceOf(IncompatibleCheckpointError);
      const phi3 = makeWeights(rt, PHI3, 'F32', 2);
      const noQkv = new Map(phi3.gpu);
      noQkv.delete('model.layers.1.self_attn.qkv_proj.weight');
      await expect(GpuModel.create(rt, PHI3, noQkv)).rejects.toThrow(/model\.layers\.1\.self_attn\.qkv_proj\.weight/);
      const split = new Map(phi3.gpu);
      split.set('model.layers.0.mlp.gate_up_proj.weight', { ...phi3.gpu.get('model.layers.0.mlp.gate_up_proj.weight')!, shape: [72, 32] });
      await expect(GpuModel.create(rt, PHI3, split)).rejects.toBeInstanceOf(IncompatibleCheckpointError);
      const model = await GpuModel.create(rt, GPT2, w.gpu, { maxContext: 16 });
      await expect(model.nll([1, 301])).rejects.toBeInstanceOf(InputError);
      await expect(model.nll(Array.from({ length: 17 }, () => 1))).rejects.toBeInstanceOf(InputError);
      model.destroy();
    });
  });
});
