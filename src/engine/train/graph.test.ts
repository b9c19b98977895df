/**
 * The generated ONNX graphs against the float64 reference (src/engine/model/reference.ts), run by
 * onnxruntime-web's training wasm in Node: (a) the loss of the eval graph equals the reference
 * mean NLL; (b) the autodiff gradients match central finite differences of the reference loss.
 */
import { describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint.ts';
import { folderFileSet } from '../../node/files.ts';
import { buildEvalModel, buildGradientModel } from './artifacts.ts';
import { mulberry32 } from '../random.ts';
import { modelParams, type ParamInfo } from './model.ts';
import { batchFeeds, nodeOrt, referenceLoss } from './testing.ts';
import { loadParams } from './trainer.ts';

const FIXTURES = new URL('../../../e2e/fixtures/', import.meta.url).pathname;
const B = 2;
const T = 12;

async function setup(name: string): Promise<{ ck: Checkpoint; params: ParamInfo[]; w: Map<string, Float32Array>; seqs: number[][] }> {
  const ck = await openCheckpoint(await folderFileSet(FIXTURES + name));
  const params = modelParams(ck.spec, (n) => ck.tensors.has(n));
  const w = await loadParams(ck, params);
  const rand = mulberry32(1234);
  const seqs = Array.from({ length: B }, () => Array.from({ length: T + 1 }, () => Math.floor(rand() * ck.spec.vocabSize)));
  return { ck, params, w, seqs };
}



const to64 = (w: Map<string, Float32Array>): Map<string, Float64Array> => new Map([...w].map(([k, v]) => [k, Float64Array.from(v)]));

describe.each(['tiny-gpt2', 'tiny-llama', 'tiny-qwen2', 'tiny-phi3', 'tiny-llama3', 'tiny-qwen2-yarn', 'tiny-qwen3', 'tiny-gemma2', 'tiny-olmo2'])('ORT graphs for %s', (fixture) => {
  it('eval-graph loss equals the float64 reference mean NLL within 1e-4 relative', async () => {
    const ort = await nodeOrt();
    const { ck, params, w, seqs } = await setup(fixture);
    const session = await ort.InferenceSession.create(buildEvalModel(ck.spec, params, { batch: B, seqLen: T }));
    const got = (await session.run(batchFeeds(ort, params, w, seqs))).loss!.data as Float32Array;
    const want = referenceLoss(ck, to64(w), seqs);
    const rel = Math.abs(got[0]! - want) / want;
    console.log(`${fixture}: ORT loss ${got[0]} reference ${want} rel ${rel.toExponential(2)}`);
    expect(rel).toBeLessThan(1e-4);
  });

  it('autodiff gradients match central finite differences of the reference loss', async () => {
    const ort = await nodeOrt();
    const { ck, params, w, seqs } = await setup(fixture);
    const all = new Set(params.map((p) => p.name));
    const session = await ort.InferenceSession.create(buildGradientModel(ck.spec, params, all, { batch: B, seqLen: T }));
    const out = await session.run(batchFeeds(ort, params, w, seqs));
    const w64 = to64(w);
    const rand = mulberry32(99);
    const h = 1e-3;
    const report: string[] = [];
    let worst = 0;
    for (const p of params) {
      const g = out[`${p.name}_grad`]!.data as Float32Array;
      const base = w64.get(p.name)!;
      let maxAbs = 0;
      for (const v of g) maxAbs = Math.max(maxAbs, Math.abs(v));
      // The 3 largest-magnitude entries (where the gradient carries signal) and 2 random ones.
      const idx = [...g.keys()].sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!)).slice(0, 3);
      for (let k = 0; k < 2; k++) idx.push(Math.floor(rand() * g.length));
      let err = 0;
      for (const i of idx) {
        const keep = base[i]!;
        base[i] = keep + h;
        const up = referenceLoss(ck, w64, seqs);
        base[i] = keep - h;
        const down = referenceLoss(ck, w64, seqs);
        base[i] = keep;
        const fd = (up - down) / (2 * h);
        err = Math.max(err, Math.abs(g[i]! - fd) / Math.max(Math.abs(fd), 0.05 * maxAbs, 1e-6));
      }
      worst = Math.max(worst, err);
      report.push(`${p.name} ${(100 * err).toPrecision(2)}%`);
    }
    console.log(`${fixture}: max relative gradient error per tensor: ${report.join(', ')}`);
    expect(worst).toBeLessThan(0.03);
  });
});

it('eval-graph loss with a sliding window shorter than the sequence (tiny-phi3, W = 5 < T = 12) equals the reference', async () => {
  const ort = await nodeOrt();
  const { ck, params, w, seqs } = await setup('tiny-phi3');
  const windowed = { ...ck, spec: { ...ck.spec, slidingWindow: 5 } };
  const session = await ort.InferenceSession.create(buildEvalModel(windowed.spec, params, { batch: B, seqLen: T }));
  const got = (await session.run(batchFeeds(ort, params, w, seqs))).loss!.data as Float32Array;
  const want = referenceLoss(windowed, to64(w), seqs);
  const rel = Math.abs(got[0]! - want) / want;
  console.log(`tiny-phi3, window 5: ORT loss ${got[0]} reference ${want} (full causal ${referenceLoss(ck, to64(w), seqs)}) rel ${rel.toExponential(2)}`);
  expect(rel).toBeLessThan(1e-4);
  expect(Math.abs(referenceLoss(ck, to64(w), seqs) - want) / want).toBeGreaterThan(1e-3);
});
