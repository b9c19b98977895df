/**
 * Tests' onnxruntime-web training module in Node: the package's `./training` export is marked
 * browser-only, but its wasm build runs in Node (single thread), so tests import the .mjs by path.
 */
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
