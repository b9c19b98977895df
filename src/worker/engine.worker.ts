import { inspectCheckpoint, normaliseShaderSources } from '../engine/index.ts';
import { createEngineHost } from './host.ts';
import type { Reply, Request } from './protocol.ts';

/**
 * The engine Worker: hosts the GPU device and the engine; talks to the page only through the
 * typed messages in protocol.ts. Vite bundles every shaders/**.wgsl into this module as text.
 */
const shaders = normaliseShaderSources(
  import.meta.glob<string>('/shaders/**/*.wgsl', { query: '?raw', import: 'default', eager: true }),
);

// tsconfig's lib is DOM (the page's); the WebWorker lib would clash with it, so the few
// Worker-scope members used here are typed by hand.
interface WorkerScope {
  readonly navigator: { readonly gpu?: GPU };
  postMessage(message: Reply): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<Request>) => void): void;
}
const scope = self as unknown as WorkerScope;

const host = createEngineHost(
  {
    gpu: () => scope.navigator.gpu,
    shaders,
    inspect: (files, name, { signal }) => inspectCheckpoint(files, name, { signal }),
    session: true,
  },
  (reply: Reply) => scope.postMessage(reply),
);

scope.addEventListener('message', (event: MessageEvent<Request>) => {
  void host.handle(event.data);
});
