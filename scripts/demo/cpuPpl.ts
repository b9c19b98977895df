/**
 * Held-out perplexity on the CPU with onnxruntime-web's wasm in Node: the training code's own
 * eval graph (buildEvalModel: parameters as inputs, mean NLL over labelled positions) scores
 * the studio's windows (src/engine/model/perplexity.ts) — consecutive windows of `context` tokens, each predicting its tokens
 * 1..n-1. Used by make-demo for the many merge candidates of a grid, where the GPU forward pass
 * on SwiftShader would take too long; make-demo cross-checks it against `dem ppl`.
 */
import { openCheckpoint, type Checkpoint, buildEvalModel, loadParams, modelParams, batchTensors, type ParamInfo, type ModelSpec } from '../../src/engine/index.ts';
import { folderFileSet } from '../../src/node/files.ts';

const DIST = new URL('../../node_modules/onnxruntime-web-training/dist/', import.meta.url);

interface OrtInference {
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: readonly number[]) => unknown;
  InferenceSession: { create(model: Uint8Array): Promise<{ run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown }>>; release(): Promise<void> }> };
  env: { wasm: { numThreads: number; wasmPaths: string } };
}

export interface CpuScorer {
  spec: ModelSpec;
  params: ParamInfo[];
  /** exp(mean NLL per predicted token) of each token stream under `weights`. */
  perplexities(weights: ReadonlyMap<string, Float32Array>, texts: readonly number[][]): Promise<number[]>;
  release(): Promise<void>;
}

export async function openFolder(dir: string): Promise<Checkpoint> {
  return openCheckpoint(await folderFileSet(dir));
}

export async function weightsOf(ckpt: Checkpoint, params: readonly ParamInfo[]): Promise<Map<string, Float32Array>> {
  return loadParams(ckpt, params);
}

export async function cpuScorer(spec: ModelSpec, has: (name: string) => boolean, context: number, batch = 8): Promise<CpuScorer> {
  const ort = (await import(/* @vite-ignore */ new URL('ort.training.wasm.min.mjs', DIST).href)) as OrtInference;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = decodeURIComponent(DIST.pathname);
  const params = modelParams(spec, has);
  const session = await ort.InferenceSession.create(buildEvalModel(spec, params, { batch, seqLen: context }));
  return {
    spec,
    params,
    async perplexities(weights, texts) {
      const feeds: Record<string, unknown> = {};
      for (const p of params) feeds[p.name] = new ort.Tensor('float32', weights.get(p.name)!, p.shape);
      const out: number[] = [];
      for (const ids of texts) {
        const windows: Int32Array[] = [];
        for (let s = 0; s < ids.length; s += context) {
          const w = Int32Array.from(ids.slice(s, s + context));
          if (w.length >= 2) windows.push(w);
        }
        let nll = 0;
        let count = 0;
        for (let i = 0; i < windows.length; i += batch) {
          const chunk = windows.slice(i, i + batch);
          const t = batchTensors(chunk, batch, context);
          const r = await session.run({ ...feeds, input_ids: new ort.Tensor('int64', t.ids, [batch, context]), labels: new ort.Tensor('int64', t.labels, [batch, context]) });
          nll += (Object.values(r)[0]!.data as Float32Array)[0]! * t.predicted;
          count += t.predicted;
        }
        out.push(Math.exp(nll / count));
      }
      return out;
    },
    release: () => session.release(),
  };
}

/** Task arithmetic (DEM) in float32: base + Σ_i ω_i (ft_i − base), per tensor. */
export function taskArithmetic(base: ReadonlyMap<string, Float32Array>, fts: readonly ReadonlyMap<string, Float32Array>[], weights: readonly number[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, b] of base) {
    const m = Float32Array.from(b);
    fts.forEach((ft, i) => {
      const f = ft.get(name)!;
      const w = weights[i]!;
      for (let k = 0; k < m.length; k++) m[k]! += w * (f[k]! - b[k]!);
    });
    out.set(name, m);
  }
  return out;
}
