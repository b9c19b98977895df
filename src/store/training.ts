import { createStore, type StoreApi } from 'zustand/vanilla';
import { ZipWriter, type TrainProgress, type TrainSettings, type TrainableSelection } from '../engine/index.ts';

export type { TrainProgress, TrainSettings, TrainableSelection };
import { toErrorInfo } from '../worker/errors.ts';
import type { ErrorInfo, FileEntry } from '../worker/protocol.ts';
import type { TrainedFile, TrainReply, TrainRequest, TrainStage } from '../worker/trainProtocol.ts';
import { newId } from './ids.ts';
import type { StudioStore } from './index.ts';
import { baseOf } from './recipe.ts';

/**
 * Fine-tuning in the studio: its own small store beside the studio store, driving the training
 * Worker (train.worker.ts; the engine Worker stays free for sliders and perplexity). While a run
 * goes on, every snapshot becomes a fine-tune card named "… (training s/N)" that the user can
 * merge with; the finished run replaces it with the final fine-tune. A failed or cancelled run
 * removes that card: the workspace is as it was.
 */
export interface TrainWorkerLike {
  postMessage(message: TrainRequest): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<TrainReply>) => void): void;
  addEventListener(type: 'error', listener: (event: ErrorEvent) => void): void;
  terminate(): void;
}

export type TrainingStatus = 'idle' | 'running' | 'done' | 'failed' | 'cancelled';

export interface LossPoint {
  step: number;
  loss?: number;
  heldOut?: number;
}

export interface TrainingResult {
  name: string;
  files: TrainedFile[];
  checkpointId: string;
  tokensPerSecond: number;
}

export interface TrainingState {
  status: TrainingStatus;
  stage: TrainStage | null;
  tokens: number | null;
  progress: TrainProgress | null;
  curve: LossPoint[];
  error: ErrorInfo | null;
  /** The workspace card that follows the run's snapshots (null before the first one). */
  liveId: string | null;
  snapshotStep: number | null;
  result: TrainingResult | null;
  /** Fine-tunes the workspace base on `text`; the result is named `name`. */
  start: (name: string, text: string, settings: TrainSettings) => void;
  cancel: () => void;
  /** The finished fine-tune as a zip of its folder (`<name>/model.safetensors` …); null before one finished. */
  zip: () => Blob | null;
}

export const DEFAULT_TRAIN_SETTINGS: TrainSettings = {
  steps: 100,
  batchSize: 4,
  seqLen: 64,
  lr: 1e-3,
  warmupSteps: 10,
  weightDecay: 0,
  trainable: { kind: 'all' },
  heldOutFraction: 0.1,
  evalEvery: 10,
  snapshotEvery: 25,
  seed: 1,
};

/** Below this many characters a text cannot fill even one training window plus held-out text. */
export const MIN_TEXT_CHARS = 64;

const FLUSH_MS = 100;
/**
 * A cancel the Worker has not confirmed within this long (it checks between steps, and a step can
 * take seconds on a busy CPU) ends the Worker itself; the next run starts a fresh one.
 */
export const CANCEL_GRACE_MS = 1000;
/** Points kept for the chart: past this, every other training-loss point goes (held-out points stay). */
const MAX_POINTS = 400;

function thin(curve: LossPoint[]): LossPoint[] {
  if (curve.length <= MAX_POINTS) return curve;
  const last = curve.length - 1;
  return curve.filter((p, i) => i % 2 === 0 || i === last || p.heldOut !== undefined);
}

export type TrainingStore = StoreApi<TrainingState> & { dispose: () => void };

export function createTrainingStore(studio: Pick<StudioStore, 'getState' | 'setState'>, makeWorker: () => TrainWorkerLike): TrainingStore {
  let worker: TrainWorkerLike | undefined;
  let runId = 0;
  let runName = '';
  // Snapshots replace the live card one at a time; only the newest waiting one is kept.
  let pending: { step: number; total: number; files: TrainedFile[] } | null = null;
  let applying: Promise<void> = Promise.resolve();

  const fileEntries = (files: readonly TrainedFile[]): FileEntry[] => files.map((f) => ({ path: f.path, file: new File([f.bytes as BlobPart], f.path) }));

  /**
   * Swaps the live card for a new one with `files` (a new id, so nothing cached under the old id
   * is reused). Snapshots are transient (not stored: a reload ends the run); the final one is kept.
   */
  async function replaceLive(name: string, files: readonly TrainedFile[], run: number, transient: boolean): Promise<string | null> {
    if (run !== runId) return null;
    const s = studio.getState();
    const old = store.getState().liveId;
    const id = newId('ckpt');
    const coef = old ? s.coefficients[old] : undefined;
    if (coef) studio.setState((st) => ({ coefficients: { ...st.coefficients, [id]: coef } }));
    if (old) s.removeCheckpoint(old);
    store.setState({ liveId: id });
    await s.addCheckpoint(name, fileEntries(files), { id, role: 'finetune', transient });
    return id;
  }

  function removeLive(): void {
    const old = store.getState().liveId;
    if (old) studio.getState().removeCheckpoint(old);
    store.setState({ liveId: null, snapshotStep: null });
  }

  function applySnapshots(run: number): void {
    applying = applying.then(async () => {
      const next = pending;
      pending = null;
      if (!next || run !== runId || store.getState().status !== 'running') return;
      await replaceLive(`${runName} (training ${next.step}/${next.total})`, next.files, run, true);
      store.setState({ snapshotStep: next.step });
    });
  }

  let buffered: LossPoint[] = [];
  let latest: TrainProgress | null = null;
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  function flush(): void {
    if (flushTimer !== undefined) clearTimeout(flushTimer);
    flushTimer = undefined;
    if (!buffered.length) return;
    const points = buffered;
    const p = latest;
    buffered = [];
    store.setState((s) => ({ progress: p, curve: thin([...s.curve, ...points]) }));
  }

  function onReply(reply: TrainReply): void {
    if (reply.id !== runId) return;
    if (reply.kind !== 'train-progress') flush();
    const run = runId;
    switch (reply.kind) {
      case 'train-status':
        store.setState((s) => ({ stage: reply.stage, tokens: reply.tokens ?? s.tokens }));
        break;
      case 'train-progress': {
        const p = reply.progress;
        buffered.push({ step: p.step, loss: p.loss, ...(p.heldOutLoss !== undefined ? { heldOut: p.heldOutLoss } : {}) });
        latest = p;
        // Steps can come hundreds a second: the page re-renders at most every FLUSH_MS.
        flushTimer ??= setTimeout(flush, FLUSH_MS);
        break;
      }
      case 'train-snapshot':
        if (reply.step < (store.getState().progress?.totalSteps ?? Infinity)) {
          pending = { step: reply.step, total: store.getState().progress?.totalSteps ?? reply.step, files: reply.files };
          applySnapshots(run);
        }
        break;
      case 'train-done':
        pending = null;
        applying = applying.then(async () => {
          if (run !== runId) return;
          const id = await replaceLive(runName, reply.files, run, false);
          if (!id) return;
          store.setState({
            status: 'done',
            stage: null,
            liveId: null,
            result: { name: runName, files: reply.files, checkpointId: id, tokensPerSecond: reply.tokensPerSecond },
          });
        });
        break;
      case 'train-error':
      {
        // At once, not after queued snapshot loads: removing the card aborts a load still under way.
        pending = null;
        const cancelled = reply.error.code === 'cancelled';
        store.setState({ status: cancelled ? 'cancelled' : 'failed', stage: null, error: cancelled ? null : reply.error });
        removeLive();
        // A snapshot card whose replacement was already under way goes too.
        applying = applying.then(() => {
          if (run === runId && store.getState().status !== 'running') removeLive();
        });
        break;
      }
    }
  }

  function ensureWorker(): TrainWorkerLike {
    if (worker) return worker;
    const w = makeWorker();
    w.addEventListener('message', (e) => onReply(e.data));
    w.addEventListener('error', (e) => {
      // A crashed Worker (e.g. wasm out of memory): report it and start a fresh one next time.
      worker = undefined;
      w.terminate();
      if (store.getState().status === 'running') {
        removeLive();
        store.setState({ status: 'failed', stage: null, error: { name: 'WorkerCrashedError', code: 'worker-crashed', message: `The training Worker crashed${e.message ? `: ${e.message}` : ''}` } });
      }
    });
    worker = w;
    return w;
  }

  const fail = (message: string): void =>
    store.setState({ status: 'failed', stage: null, error: { name: 'InputError', code: 'input', message }, progress: null, curve: [] });

  const store = createStore<TrainingState>()((set, get) => ({
    status: 'idle',
    stage: null,
    tokens: null,
    progress: null,
    curve: [],
    error: null,
    liveId: null,
    snapshotStep: null,
    result: null,

    start: (name, text, settings) => {
      if (get().status === 'running') return;
      const base = baseOf(studio.getState().checkpoints);
      if (!base) return fail('Add a base checkpoint first: training fine-tunes the workspace base.');
      if (text.trim().length === 0) return fail('The training text is empty.');
      if (text.length < MIN_TEXT_CHARS) return fail(`The training text is too short (${text.length} characters; at least ${MIN_TEXT_CHARS}).`);
      const trimmed = name.trim() || `${base.name}-ft`;
      flush();
      runId++;
      runName = trimmed;
      pending = null;
      buffered = [];
      set({ status: 'running', stage: 'loading', tokens: null, progress: null, curve: [], error: null, liveId: null, snapshotStep: null, result: null });
      try {
        ensureWorker().postMessage({ kind: 'train-start', id: runId, name: base.name, files: base.files, text, settings });
      } catch (error) {
        set({ status: 'failed', stage: null, error: toErrorInfo(error) });
      }
    },

    cancel: () => {
      if (get().status !== 'running' || !worker) return;
      const w = worker;
      const run = runId;
      w.postMessage({ kind: 'train-cancel', target: run });
      setTimeout(() => {
        if (run !== runId || get().status !== 'running' || worker !== w) return;
        worker = undefined;
        w.terminate();
        runId++; // anything the old run still had queued is ignored
        pending = null;
        flush();
        set({ status: 'cancelled', stage: null, error: null });
        removeLive();
        // A snapshot card whose replacement was already under way goes too.
        const ended = runId;
        applying = applying.then(() => {
          if (ended === runId && get().status !== 'running') removeLive();
        });
      }, CANCEL_GRACE_MS);
    },

    zip: () => {
      const r = get().result;
      if (!r) return null;
      const z = new ZipWriter();
      for (const f of r.files) z.add(`${r.name}/${f.path}`, f.bytes);
      return new Blob(z.finish() as BlobPart[], { type: 'application/zip' });
    },
  }));

  return {
    ...store,
    dispose: () => {
      worker?.terminate();
      worker = undefined;
    },
  };
}
