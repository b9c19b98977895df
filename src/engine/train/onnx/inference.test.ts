/**
 * The inference model (inference.ts) against the float64 reference forward
 * (src/engine/model/reference.ts), run by onnxruntime-web's wasm in Node: per-position logits and
 * NLL of the fixture models, with weights as initializers and as graph inputs.
 */
import { describe, expect, it } from 'vitest';
import { folderFileSet } from '../../../node/files.ts';
import { openCheckpoint } from '../../io/checkpoint.ts';
import { checkClose } from '../../model/testutil.ts';
import { referenceForward } from '../../model/reference.ts';
import { mulberry32 } from '../../random.ts';
import { modelParams } from '../model.ts';
import { nodeOrt } from '../testing.ts';
import { loadParams } from '../trainer.ts';
import { buildInferenceModel, LOGITS, NLL } from './inference.ts';

const FIXTURES = new URL('../../../../e2e/fixtures/', import.meta.url).pathname;
const B = 2;
const T = 11;

describe.each(['tiny-gpt2', 'tiny-llama', 'tiny-qwen2', 'tiny-phi3', 'tiny-llama3', 'tiny-qwen3', 'tiny-gemma2', 'tiny-olmo2'])('ORT inference model for %s', (fixture) => {
  it.each([true, false])('logits and per-position NLL equal the float64 reference (weights as initializers: %s)', async (initializers) => {
    const ort = await nodeOrt();
    const ck = await openCheckpoint(await folderFileSet(FIXTURES + fixture));
    const { spec } = ck;
    const params = modelParams(spec, (n) => ck.tensors.has(n));
    const w = await loadParams(ck, params);
    const seed = 4321 + (initializers ? 0 : 1);
    const rand = mulberry32(seed);
    // T + 1 ids per row: ids[0..T) in, ids[1..T] as labels, so every position has a label.
    const seqs = Array.from({ length: B }, () => Array.from({ length: T + 1 }, () => Math.floor(rand() * spec.vocabSize)));
    const Tensor = ort.Tensor as unknown as new (type: string, data: unknown, dims: readonly number[]) => unknown;
    const feeds: Record<string, unknown> = {
      input_ids: new Tensor('int64', BigInt64Array.from(seqs.flatMap((s) => s.slice(0, T).map(BigInt))), [B, T]),
      labels: new Tensor('int64', BigInt64Array.from(seqs.flatMap((s) => s.slice(1).map(BigInt))), [B, T]),
    };
    if (!initializers) for (const p of params) feeds[p.name] = new Tensor('float32', w.get(p.name)!, p.shape);
    const model = buildInferenceModel(spec, params, initializers ? w : undefined, { batch: B, seqLen: T, logits: true });
    const session = await ort.InferenceSession.create(model);
    const out = await session.run(feeds);
    const nll = out[NLL]!.data as Float32Array;
    const logits = out[LOGITS]!.data as Float32Array;
    expect(nll.length).toBe(B * T);
    expect(logits.length).toBe(B * T * spec.vocabSize);

    const w64 = new Map([...w].map(([k, v]) => [k, Float64Array.from(v)]));
    const wantLogits = new Float64Array(B * T * spec.vocabSize);
    const wantNll = new Float64Array(B * T);
    seqs.forEach((s, b) => {
      // The reference on all T + 1 ids gives the NLL of ids[1..T], i.e. of every label; its
      // first T logits rows are those of the T inputs (causal: the extra id changes nothing).
      const ref = referenceForward(spec, w64, s);
      wantLogits.set(ref.logits.subarray(0, T * spec.vocabSize), b * T * spec.vocabSize);
      wantNll.set(ref.nll, b * T);
    });
    const eL = checkClose(`${fixture} logits`, logits, wantLogits, 1e-4, 1e-4, seed);
    const eN = checkClose(`${fixture} nll`, nll, wantNll, 1e-5, 1e-5, seed);
    console.log(`${fixture} (initializers ${initializers}): max rel error logits ${eL.toExponential(2)}, nll ${eN.toExponential(2)}`);
  });
});
