import {
  CancelledError,
  GpuRuntime,
  InputError,
  blobSource,
  requestDevice,
  summariseDevice,
  type AdapterSummary,
  type ByteSource,
  type CheckpointSummary,
  type FileSet,
  type ShaderSources,
} from '../engine/index.ts';
import { toErrorInfo } from './errors.ts';
import { WorkspaceSession } from './session.ts';
import type { FileEntry, Progress, Reply, Request, RequestKind, RequestOf, Results } from './protocol.ts';

/**
 * The engine side of the protocol, free of Worker globals so it can be driven directly in tests:
 * engine.worker.ts wires it to `self`. It owns the one GpuRuntime (the device lives here, not in
 * the page) and one AbortController per request in flight.
 */
export interface InspectOptions {
  signal: AbortSignal;
  onProgress: (progress: Progress) => void;
}

export interface HostDeps {
  /** `navigator.gpu` in the Worker; undefined where WebGPU is missing. */
  gpu: () => GPU | undefined;
  shaders: ShaderSources;
  inspect: (files: FileSet, name: string, options: InspectOptions) => Promise<CheckpointSummary>;
  /** The workspace (load, evaluate, export …); absent in tests that only exercise the transport. */
  session?: boolean;
}

export interface EngineHost {
  handle(request: Request): Promise<void>;
  /** The live runtime, once `init` succeeded and until the device is lost. */
  readonly runtime: GpuRuntime | undefined;
}

export function createEngineHost(deps: HostDeps, post: (reply: Reply) => void): EngineHost {
  let runtime: GpuRuntime | undefined;
  let adapter: AdapterSummary | undefined;
  let starting: Promise<AdapterSummary> | undefined;
  const inFlight = new Map<number, AbortController>();

  let memoryBudget: number | undefined;

  async function init(): Promise<AdapterSummary> {
    if (runtime && adapter && !runtime.lostError) return adapter;
    const device = await requestDevice(deps.gpu(), 'dem-worker');
    const rt = new GpuRuntime(device, deps.shaders, { label: 'Worker', memoryBudget });
    const summary = summariseDevice(device, device.adapterInfo);
    runtime = rt;
    adapter = summary;
    void rt.lost.then((error) => {
      if (runtime !== rt) return;
      runtime = undefined;
      adapter = undefined;
      // A device destroyed on purpose (rt.destroy) is not news to the page.
      if (!error.message.includes('(destroyed)')) post({ kind: 'device-lost', error: toErrorInfo(error) });
    });
    return summary;
  }

  const startRuntime = async (): Promise<GpuRuntime> => {
    await work.init({ id: -1, kind: 'init' }, new AbortController().signal, -1);
    if (!runtime) throw new InputError('the GPU device is not available');
    return runtime;
  };
  const session = deps.session ? new WorkspaceSession({ runtime: startRuntime }) : undefined;
  const needSession = (): WorkspaceSession => {
    if (!session) throw new InputError('this engine has no workspace');
    return session;
  };

  const work: { [K in RequestKind]: (request: RequestOf<K>, signal: AbortSignal, id: number) => Promise<Results[K]> } = {
    init: (request) => {
      if (request.memoryBudget !== undefined) memoryBudget = request.memoryBudget;
      // Concurrent inits share one device request.
      starting ??= init().finally(() => (starting = undefined));
      return starting;
    },
    inspect: (request, signal, id) =>
      deps.inspect(toFileSet(request.files), request.name, {
        signal,
        onProgress: (progress) => {
          if (!signal.aborted) post({ id, kind: 'progress', progress });
        },
      }),
    load: (r, signal) => needSession().load(r.key, r.name, toFileSet(r.files), signal, r.base),
    unload: async (r) => needSession().unload(r.key),
    compat: async (r) => needSession().compat(r.base, r.models),
    tokenize: (r) => needSession().tokenize(r.key, r.name, r.text, r.base),
    evaluate: (r, signal) => needSession().evaluate(r, signal),
    plan: (r) => needSession().plan(r.recipe, r.context),
    configure: async (r) => needSession().configure(r.compressed),
    reference: (r, signal) => needSession().reference(r.checkpoint, r.sets, r.context, signal),
    addTask: (r) => needSession().addTask(r.key, r.name, r.text, r.base),
    score: (r, signal) => needSession().score(r, signal),
    taskReference: (r, signal) => needSession().taskReference(r.checkpoint, r.tasks, r.context, signal),
    layers: (r, signal) => needSession().layers(r.base, r.models, signal),
    export: (r, signal) => needSession().export(r.base, r.recipe, r.target, r.extraFiles, signal),
    generate: (r, signal) => needSession().generate(r.recipe, r.base, r.prompt, r.maxTokens, signal, r.sampling),
  };

  async function run<K extends RequestKind>(request: RequestOf<K>): Promise<void> {
    const { id } = request;
    const controller = new AbortController();
    inFlight.set(id, controller);
    // Cancelling answers at once even if the work does not check its signal in time.
    const aborted = new Promise<never>((_resolve, reject) => {
      controller.signal.addEventListener('abort', () => reject(new CancelledError()), { once: true });
    });
    try {
      const result = await Promise.race([work[request.kind](request, controller.signal, id), aborted]);
      post({ id, kind: 'result', result });
    } catch (error) {
      post({ id, kind: 'error', error: toErrorInfo(error) });
    } finally {
      inFlight.delete(id);
    }
  }

  return {
    get runtime() {
      return runtime;
    },
    async handle(request) {
      switch (request.kind) {
        case 'cancel':
          inFlight.get(request.target)?.abort();
          return;
        case 'init':
        case 'inspect':
        case 'load':
        case 'unload':
        case 'compat':
        case 'tokenize':
        case 'evaluate':
        case 'reference':
        case 'addTask':
        case 'score':
        case 'taskReference':
        case 'layers':
        case 'export':
        case 'generate':
        case 'plan':
        case 'configure':
          return run(request as RequestOf<typeof request.kind>);
        default: {
          const unknown = request as { id?: unknown; kind?: unknown };
          const id = typeof unknown.id === 'number' ? unknown.id : -1;
          post({ id, kind: 'error', error: toErrorInfo(new InputError(`unknown request kind '${String(unknown.kind)}'`)) });
        }
      }
    },
  };
}

/** Paths as the user's folder had them, one source per file; duplicates are a user error. */
export function toFileSet(entries: readonly FileEntry[]): FileSet {
  const files = new Map<string, ByteSource>();
  for (const { path, file } of entries) {
    const clean = path.replace(/^\.?\/+/, '');
    if (files.has(clean)) throw new InputError(`the file '${clean}' was given twice`, { file: clean });
    files.set(clean, blobSource(file, clean));
  }
  return files;
}
