/**
 * Tests' onnxruntime-web training module in Node: the package's `./training` export is marked
 * browser-only, but its wasm build runs in Node (single thread), so tests import the .mjs by path.
 */
import { referenceForward } from '../model/reference.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import type { ParamInfo } from './model.ts';
import type { OrtTrainingModule } from './trainer.ts';

const DIST = new URL('../../../node_modules/onnxruntime-web-training/dist/', import.meta.url);

export interface NodeOrt extends OrtTrainingModule {
  InferenceSession: { create(model: Uint8Array): Promise<{ run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown }>> }> };
  env: { wasm: { numThreads: number; wasmPaths: string } };
}

let cached: Promise<NodeOrt> | undefined;

export function nodeOrt(): Promise<NodeOrt> {
  cached ??= (async () => {
    const url = new URL('ort.training.wasm.min.mjs', DIST).href;
    const ort = (await import(/* @vite-ignore */ url)) as NodeOrt;
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = decodeURIComponent(DIST.pathname);
    return ort;
  })();
  return cached;
}

/** A training/eval graph's feeds: token windows `seqs` (B sequences of T + 1 ids: inputs and shifted labels) and every parameter by name. */
export function batchFeeds(ort: NodeOrt, params: readonly ParamInfo[], w: ReadonlyMap<string, Float32Array>, seqs: readonly number[][]): Record<string, unknown> {
  const Tensor = ort.Tensor as unknown as new (type: string, data: unknown, dims: readonly number[]) => unknown;
  const B = seqs.length;
  const T = seqs[0]!.length - 1;
  const out: Record<string, unknown> = {
    input_ids: new Tensor('int64', BigInt64Array.from(seqs.flatMap((s) => s.slice(0, T).map(BigInt))), [B, T]),
    labels: new Tensor('int64', BigInt64Array.from(seqs.flatMap((s) => s.slice(1).map(BigInt))), [B, T]),
  };
  for (const p of params) out[p.name] = new Tensor('float32', w.get(p.name)!, p.shape);
  return out;
}

/** Mean NLL of the windows `seqs` under the float64 reference with weights `w64`. */
export function referenceLoss(ck: Checkpoint, w64: Map<string, Float64Array>, seqs: readonly number[][]): number {
  let sum = 0;
  let n = 0;
  for (const s of seqs) {
    for (const v of referenceForward(ck.spec, w64, s).nll) {
      sum += v;
      n++;
    }
  }
  return sum / n;
}
