/**
 * Task scoring on the CPU with onnxruntime-web's wasm in Node, for the many models and merges of
 * the demo's table (the GPU forward pass on SwiftShader would take too long): the engine's
 * inference graph (buildInferenceModel: per-position NLL, and logits for decoding) as a TaskModel,
 * so the engine's own scoring code (scoreTask: lm-eval's rules, acc, acc_norm, exact match) runs
 * over it unchanged. scripts/demo/tasks.ts cross-checks it against the GPU engine.
 */
import { argmaxFirst, buildInferenceModel, modelParams, throwIfAborted, type ModelSpec, type ParamInfo, type TaskModel, type TokenSpan } from '../../src/engine/index.ts';

const DIST = new URL('../../node_modules/onnxruntime-web-training/dist/', import.meta.url);

interface OrtTensor {
  data: unknown;
}
interface OrtInference {
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: readonly number[]) => unknown;
  InferenceSession: { create(model: Uint8Array): Promise<{ run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>; release(): Promise<void> }> };
  env: { wasm: { numThreads: number; wasmPaths: string } };
}

export interface CpuTaskScorer {
  params: ParamInfo[];
  /** The model with these (f32) weights as a TaskModel. */
  model(weights: ReadonlyMap<string, Float32Array>): TaskModel;
  release(): Promise<void>;
}

/** Spans and decoding up to `context` input tokens; spans batched `batch` per run. */
export async function cpuTaskScorer(spec: ModelSpec, has: (name: string) => boolean, context: number, batch = 8): Promise<CpuTaskScorer> {
  const ort = (await import(/* @vite-ignore */ new URL('ort.training.wasm.min.mjs', DIST).href)) as OrtInference;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = decodeURIComponent(DIST.pathname);
  const params = modelParams(spec, has);
  const T = context;
  const spans = await ort.InferenceSession.create(buildInferenceModel(spec, params, undefined, { batch, seqLen: T }));
  const single = await ort.InferenceSession.create(buildInferenceModel(spec, params, undefined, { batch: 1, seqLen: T, logits: true }));
  const V = spec.vocabSize;

  return {
    params,
    model(weights) {
      const feeds: Record<string, unknown> = {};
      for (const p of params) feeds[p.name] = new ort.Tensor('float32', weights.get(p.name)!, p.shape);
      // Inputs ids[0..n−2], labels ids[1..n−1]; padding (id 0) comes after and is dropped.
      const tensors = (rows: readonly (readonly number[])[], B: number): { ids: unknown; labels: unknown } => {
        const ids = new BigInt64Array(B * T);
        const labels = new BigInt64Array(B * T);
        rows.forEach((r, b) => {
          if (r.length - 1 > T) throw new Error(`a span of ${r.length} tokens exceeds the context ${T} + 1`);
          for (let t = 0; t + 1 < r.length; t++) {
            ids[b * T + t] = BigInt(r[t]!);
            labels[b * T + t] = BigInt(r[t + 1]!);
          }
        });
        return { ids: new ort.Tensor('int64', ids, [B, T]), labels: new ort.Tensor('int64', labels, [B, T]) };
      };
      return {
        async spanNll(list: readonly TokenSpan[], signal?: AbortSignal): Promise<number[][]> {
          const out: number[][] = [];
          for (let i = 0; i < list.length; i += batch) {
            throwIfAborted(signal);
            const group = list.slice(i, i + batch);
            const t = tensors(group.map((s) => s.ids), batch);
            const nll = (await spans.run({ ...feeds, input_ids: t.ids, labels: t.labels })).nll!.data as Float32Array;
            group.forEach((s, b) => out.push(Array.from({ length: s.ids.length - s.from }, (_, k) => nll[b * T + s.from - 1 + k]!)));
          }
          return out;
        },
        async greedy(prompt, o) {
          const seq = [...prompt];
          const ids: number[] = [];
          const stop = new Set(o.stopTokens ?? []);
          while (ids.length < o.maxTokens && seq.length <= T) {
            throwIfAborted(o.signal);
            // Row seq.length − 1 predicts the next token; the label row is a dummy one token longer.
            const t = tensors([[...seq, 0]], 1);
            const logits = (await single.run({ ...feeds, input_ids: t.ids, labels: t.labels })).logits!.data as Float32Array;
            const row = seq.length - 1;
            const id = argmaxFirst(Array.from(logits.subarray(row * V, (row + 1) * V)));
            if (stop.has(id)) break;
            ids.push(id);
            if (o.until(ids)) break;
            seq.push(id);
          }
          return ids;
        },
      };
    },
    release: async () => {
      await spans.release();
      await single.release();
    },
  };
}
