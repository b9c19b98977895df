import type { AdapterSummary, CheckpointSummary } from '../engine/index.ts';
import { CancelledError } from '../engine/index.ts';
import { WorkerCrashedError, fromErrorInfo, type EngineError } from './errors.ts';
import type { FileEntry, Progress, Reply, Request, RequestBodies, RequestKind, Results } from './protocol.ts';

/**
 * The page's handle on the engine Worker: one promise per request, progress callbacks, an
 * AbortSignal that becomes a `cancel` message, and typed failures. A Worker that dies rejects
 * everything in flight with WorkerCrashedError; a lost GPU device reaches `onDeviceLost`.
 * `restart()` replaces a dead Worker with a fresh one (the caller then sends `init` again).
 */

/** The part of `Worker` the client uses; tests pass a fake. */
export interface WorkerLike {
  postMessage(message: Request): void;
  terminate(): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<Reply>) => void): void;
  addEventListener(type: 'error' | 'messageerror', listener: (event: Event) => void): void;
}

export interface RequestOptions {
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
}

/** What the store needs from the engine; the Worker client is the implementation. */
export interface EngineApi {
  init(options?: RequestOptions & { memoryBudget?: number }): Promise<AdapterSummary>;
  inspect(name: string, files: FileEntry[], options?: RequestOptions): Promise<CheckpointSummary>;
  /** Any workspace request (load, evaluate, export …) by kind; see protocol.ts. */
  call<K extends WorkspaceKind>(kind: K, body: RequestBodies[K], options?: RequestOptions): Promise<Results[K]>;
  onDeviceLost(listener: (error: EngineError) => void): () => void;
  onCrash(listener: (error: WorkerCrashedError) => void): () => void;
  restart(): void;
  dispose(): void;
}

export type WorkspaceKind = Exclude<RequestKind, 'init' | 'inspect'>;

interface Pending {
  resolve: (value: never) => void;
  reject: (error: EngineError) => void;
  onProgress?: (progress: Progress) => void;
  cleanup: () => void;
}

export class EngineClient implements EngineApi {
  private worker: WorkerLike;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly lostListeners = new Set<(error: EngineError) => void>();
  private readonly crashListeners = new Set<(error: WorkerCrashedError) => void>();
  private crashed: WorkerCrashedError | undefined;

  constructor(private readonly spawn: () => WorkerLike) {
    this.worker = this.attach(spawn());
  }

  init(options: RequestOptions & { memoryBudget?: number } = {}): Promise<AdapterSummary> {
    return this.request('init', options.memoryBudget === undefined ? {} : { memoryBudget: options.memoryBudget }, options);
  }

  call<K extends WorkspaceKind>(kind: K, body: RequestBodies[K], options: RequestOptions = {}): Promise<Results[K]> {
    return this.request(kind, body, options);
  }

  inspect(name: string, files: FileEntry[], options: RequestOptions = {}): Promise<CheckpointSummary> {
    return this.request('inspect', { name, files }, options);
  }

  onDeviceLost(listener: (error: EngineError) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  onCrash(listener: (error: WorkerCrashedError) => void): () => void {
    this.crashListeners.add(listener);
    return () => this.crashListeners.delete(listener);
  }

  restart(): void {
    this.fail(new WorkerCrashedError('The engine was restarted; the request was dropped.'), false);
    this.worker.terminate();
    this.crashed = undefined;
    this.worker = this.attach(this.spawn());
  }

  dispose(): void {
    this.fail(new WorkerCrashedError('The engine was shut down.'), false);
    this.worker.terminate();
  }

  private request<K extends RequestKind>(kind: K, body: RequestBodies[K], options: RequestOptions): Promise<Results[K]> {
    if (this.crashed) return Promise.reject(this.crashed);
    if (options.signal?.aborted) return Promise.reject(new CancelledError());
    const id = this.nextId++;
    return new Promise<Results[K]>((resolve, reject) => {
      const onAbort = (): void => {
        this.worker.postMessage({ id: this.nextId++, kind: 'cancel', target: id });
        // Settle now; the Worker's own 'cancelled' reply, when it comes, finds nothing pending.
        this.settle(id)?.reject(new CancelledError());
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: resolve as (value: never) => void,
        reject,
        onProgress: options.onProgress,
        cleanup: () => options.signal?.removeEventListener('abort', onAbort),
      });
      this.worker.postMessage({ ...body, id, kind } as Request);
    });
  }

  private settle(id: number): Pending | undefined {
    const entry = this.pending.get(id);
    if (!entry) return undefined;
    this.pending.delete(id);
    entry.cleanup();
    return entry;
  }

  private attach(worker: WorkerLike): WorkerLike {
    worker.addEventListener('message', (event: MessageEvent<Reply>) => {
      if (worker !== this.worker) return;
      this.receive(event.data);
    });
    worker.addEventListener('error', (event: Event) => {
      if (worker !== this.worker) return;
      // ErrorEvent carries the script error's text; Node (tests) has no ErrorEvent global.
      const text = (event as Partial<ErrorEvent>).message;
      const detail = typeof text === 'string' && text ? `: ${text}` : '';
      // The error event stays unhandled by default; the typed error replaces it.
      event.preventDefault();
      this.fail(new WorkerCrashedError(`The engine Worker crashed${detail}. Loaded checkpoints are kept; restart the engine to continue.`), true);
    });
    worker.addEventListener('messageerror', () => {
      if (worker !== this.worker) return;
      this.fail(new WorkerCrashedError('A message from the engine Worker could not be decoded.'), true);
    });
    return worker;
  }

  private receive(reply: Reply): void {
    if (reply.kind === 'device-lost') {
      const error = fromErrorInfo(reply.error);
      for (const listener of this.lostListeners) listener(error);
      return;
    }
    if (reply.kind === 'progress') {
      this.pending.get(reply.id)?.onProgress?.(reply.progress);
      return;
    }
    const entry = this.settle(reply.id);
    if (!entry) return;
    if (reply.kind === 'result') entry.resolve(reply.result as never);
    else entry.reject(fromErrorInfo(reply.error));
  }

  private fail(error: WorkerCrashedError, crashed: boolean): void {
    if (crashed) {
      this.crashed = error;
      this.worker.terminate();
    }
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(error);
    if (crashed) for (const listener of this.crashListeners) listener(error);
  }
}

/** The studio's engine: a module Worker built by Vite from engine.worker.ts. */
export function createEngineClient(): EngineClient {
  return new EngineClient(
    () => new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module', name: 'dem-engine' }) as unknown as WorkerLike,
  );
}
