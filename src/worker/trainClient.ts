import { CancelledError, type TrainProgress } from '../engine/index.ts';
import { WorkerCrashedError, fromErrorInfo, type EngineError } from './errors.ts';
import type { TrainReply, TrainReplyOf, TrainRequest, TrainStartBody } from './trainProtocol.ts';

/**
 * The page's handle on the training Worker (train.worker.ts), in the shape of the engine Worker's
 * client (client.ts): one promise per run, settled by the run's `train-done` or by its
 * `train-error` rebuilt as the typed error (errors.ts); status, progress and snapshot callbacks;
 * an AbortSignal that becomes a `train-cancel`. The Worker starts on the first run.
 *
 * A cancelled run settles when the Worker confirms it (it checks between steps), not at once:
 * the Worker runs one step at a time, and a next run must not queue behind a step still going.
 * A step can take seconds on a busy CPU, so a cancel not confirmed within `cancelGraceMs`
 * terminates the Worker; the run then rejects with CancelledError and the next run starts a fresh
 * Worker. A Worker that dies (an error event, e.g. wasm out of memory) rejects its runs with
 * WorkerCrashedError and is likewise replaced on the next run.
 */

/** The part of `Worker` the client uses; tests pass a fake. */
export interface TrainWorkerLike {
  postMessage(message: TrainRequest): void;
  terminate(): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<TrainReply>) => void): void;
  addEventListener(type: 'error' | 'messageerror', listener: (event: Event) => void): void;
}

export interface TrainOptions {
  signal?: AbortSignal;
  onStatus?: (status: TrainReplyOf<'train-status'>) => void;
  onProgress?: (progress: TrainProgress) => void;
  /** Weights at a step, as a checkpoint folder the engine can load while the run goes on. */
  onSnapshot?: (snapshot: TrainReplyOf<'train-snapshot'>) => void;
}

/** What a finished run resolves to: the fine-tuned folder's files, the loss curves, the speed. */
export type TrainResult = Omit<TrainReplyOf<'train-done'>, 'kind' | 'id'>;

/** What the store needs from the training Worker; TrainClient is the implementation. */
export interface TrainApi {
  /** Fine-tunes `body.files` (the base's folder) on `body.text`. */
  train(body: TrainStartBody, options?: TrainOptions): Promise<TrainResult>;
  dispose(): void;
}

/** How long a cancel may go unconfirmed before the Worker is terminated. */
export const CANCEL_GRACE_MS = 1000;

interface Run {
  worker: TrainWorkerLike;
  options: TrainOptions;
  resolve: (result: TrainResult) => void;
  reject: (error: EngineError | Error) => void;
  cleanup: () => void;
}

export class TrainClient implements TrainApi {
  private worker: TrainWorkerLike | undefined;
  private nextId = 1;
  private readonly runs = new Map<number, Run>();

  constructor(
    private readonly spawn: () => TrainWorkerLike,
    private readonly cancelGraceMs = CANCEL_GRACE_MS,
  ) {}

  train(body: TrainStartBody, options: TrainOptions = {}): Promise<TrainResult> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(new CancelledError());
    const worker = (this.worker ??= this.attach(this.spawn()));
    const id = this.nextId++;
    return new Promise<TrainResult>((resolve, reject) => {
      let grace: ReturnType<typeof setTimeout> | undefined;
      const onAbort = (): void => {
        worker.postMessage({ kind: 'train-cancel', target: id });
        grace = setTimeout(() => {
          if (!this.runs.has(id)) return;
          this.stop(worker, id);
        }, this.cancelGraceMs);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.runs.set(id, {
        worker,
        options,
        resolve,
        reject,
        cleanup: () => {
          signal?.removeEventListener('abort', onAbort);
          clearTimeout(grace);
        },
      });
      try {
        worker.postMessage({ ...body, kind: 'train-start', id });
      } catch (error) {
        // The files could not be sent (structured clone refused them).
        this.settle(id)?.reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  dispose(): void {
    if (this.worker) this.fail(this.worker, new WorkerCrashedError('The training Worker was shut down.'));
  }

  /** Ends a Worker that did not confirm the cancel of run `id`; other runs on it fail. */
  private stop(worker: TrainWorkerLike, id: number): void {
    this.settle(id)?.reject(new CancelledError());
    this.fail(worker, new WorkerCrashedError('The training Worker was stopped to cancel another run.'));
  }

  private settle(id: number): Run | undefined {
    const run = this.runs.get(id);
    if (!run) return undefined;
    this.runs.delete(id);
    run.cleanup();
    return run;
  }

  private attach(worker: TrainWorkerLike): TrainWorkerLike {
    worker.addEventListener('message', (event: MessageEvent<TrainReply>) => this.receive(event.data));
    worker.addEventListener('error', (event: Event) => {
      // ErrorEvent carries the script error's text; Node (tests) has no ErrorEvent global.
      const text = (event as Partial<ErrorEvent>).message;
      // The error event stays unhandled by default; the typed error replaces it.
      event.preventDefault();
      this.fail(worker, new WorkerCrashedError(`The training Worker crashed${typeof text === 'string' && text ? `: ${text}` : ''}`));
    });
    worker.addEventListener('messageerror', () => this.fail(worker, new WorkerCrashedError('A message from the training Worker could not be decoded.')));
    return worker;
  }

  private receive(reply: TrainReply): void {
    const run = this.runs.get(reply.id);
    if (!run) return;
    switch (reply.kind) {
      case 'train-status':
        run.options.onStatus?.(reply);
        return;
      case 'train-progress':
        run.options.onProgress?.(reply.progress);
        return;
      case 'train-snapshot':
        run.options.onSnapshot?.(reply);
        return;
      case 'train-done': {
        const { kind: _kind, id: _id, ...result } = reply;
        this.settle(reply.id)?.resolve(result);
        return;
      }
      case 'train-error':
        this.settle(reply.id)?.reject(fromErrorInfo(reply.error));
        return;
    }
  }

  /** Terminates `worker` and rejects every run on it; the next run starts a fresh Worker. */
  private fail(worker: TrainWorkerLike, error: WorkerCrashedError): void {
    worker.terminate();
    if (this.worker === worker) this.worker = undefined;
    for (const [id, run] of [...this.runs]) if (run.worker === worker) this.settle(id)?.reject(error);
  }
}

/** The studio's training Worker: a module Worker built by Vite from train.worker.ts. */
export function createTrainClient(): TrainClient {
  return new TrainClient(() => new Worker(new URL('./train.worker.ts', import.meta.url), { type: 'module', name: 'dem-train' }) as unknown as TrainWorkerLike);
}
