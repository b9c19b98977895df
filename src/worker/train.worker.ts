import type { OrtTrainingModule } from '../engine/index.ts';
import { createTrainHost } from './trainHost.ts';
import type { TrainReply, TrainRequest } from './trainProtocol.ts';

/**
 * The training Worker: onnxruntime-web 1.19.2's training wasm (CPU, threads when the page is
 * cross-origin isolated). Its .mjs/.wasm are served from /ort/ (copied there by
 * scripts/copy-ort.ts) and loaded on the first run.
 */
interface WorkerScope {
  postMessage(message: TrainReply, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<TrainRequest>) => void): void;
  readonly crossOriginIsolated?: boolean;
}
const scope = self as unknown as WorkerScope;

interface OrtWeb extends OrtTrainingModule {
  env: { wasm: { wasmPaths: string; numThreads: number } };
}

let loading: Promise<OrtTrainingModule> | undefined;
function ort(): Promise<OrtTrainingModule> {
  loading ??= (async () => {
    const m = (await import('onnxruntime-web-training/training')) as unknown as OrtWeb;
    m.env.wasm.wasmPaths = new URL('/ort/', self.location.href).href;
    // Threads need SharedArrayBuffer (COOP/COEP); two threads gave no speed-up on 2 vCPUs.
    m.env.wasm.numThreads = scope.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    return m;
  })();
  return loading;
}

const host = createTrainHost(ort, (reply, transfer) => scope.postMessage(reply, transfer ?? []));
scope.addEventListener('message', (event) => {
  void host.handle(event.data);
});
