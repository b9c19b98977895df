import type { StateCreator } from 'zustand/vanilla';
import { InputError, ZipWriter, type TrainProgress, type TrainSettings } from '../engine/index.ts';
import type { FileEntry } from '../worker/protocol.ts';
import type { TrainedFile } from '../worker/trainProtocol.ts';
import { errorRecord, isCancelled } from './errors.ts';
import { newId } from './ids.ts';
import { baseOf } from './recipe.ts';
import type { LossPoint, StoreDeps, StudioState, TrainingSlice } from './types.ts';

/**
 * Fine-tuning in the studio: a slice driving the training Worker through its client
 * (src/worker/trainClient.ts; the engine Worker stays free for sliders and perplexity). The
 * workspace changes only through the workspace's own actions: each snapshot replaces the live
 * card (addCheckpoint with a new id, removeCheckpoint of the old one, copyCoefficient so the
 * slider stays), the finished run replaces it with the kept fine-tune, an ended run removes it.
 */
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
/** Points kept for the chart: past this, every other training-loss point goes (held-out points stay). */
const MAX_POINTS = 400;

function thin(curve: LossPoint[]): LossPoint[] {
  if (curve.length <= MAX_POINTS) return curve;
  const last = curve.length - 1;
  return curve.filter((p, i) => i % 2 === 0 || i === last || p.heldOut !== undefined);
}

const fileEntries = (files: readonly TrainedFile[]): FileEntry[] => files.map((f) => ({ path: f.path, file: new File([f.bytes as BlobPart], f.path) }));

export const createTrainingSlice = ({ train }: StoreDeps): StateCreator<StudioState, [], [], TrainingSlice> => {
  // One run at a time; callbacks of an older run (runId moved on) change nothing.
  let runId = 0;
  let runName = '';
  let controller: AbortController | undefined;
  // Snapshots replace the live card one at a time; only the newest waiting one is kept.
  let pending: { step: number; total: number; files: TrainedFile[] } | null = null;
  let applying: Promise<void> = Promise.resolve();
  // Steps can come hundreds a second: the page re-renders at most every FLUSH_MS.
  let buffered: LossPoint[] = [];
  let latest: TrainProgress | null = null;
  let flushTimer: ReturnType<typeof setTimeout> | undefined;

  return (set, get) => {
    function flush(): void {
      if (flushTimer !== undefined) clearTimeout(flushTimer);
      flushTimer = undefined;
      if (!buffered.length) return;
      const points = buffered;
      const p = latest;
      buffered = [];
      set((s) => ({ trainProgress: p, trainCurve: thin([...s.trainCurve, ...points]) }));
    }

    /**
     * Swaps the live card for a new one with `files` (a new id, so nothing cached under the old id
     * is reused). Snapshots are transient (not stored: a reload ends the run); the final one is kept.
     */
    async function replaceLive(name: string, files: readonly TrainedFile[], run: number, transient: boolean): Promise<string | null> {
      if (run !== runId) return null;
      const s = get();
      const old = s.trainLiveId;
      const id = newId('ckpt');
      if (old) {
        s.copyCoefficient(old, id);
        s.removeCheckpoint(old);
      }
      set({ trainLiveId: id });
      await s.addCheckpoint(name, fileEntries(files), { id, role: 'finetune', transient });
      return id;
    }

    function removeLive(): void {
      const old = get().trainLiveId;
      if (old) get().removeCheckpoint(old);
      set({ trainLiveId: null, trainSnapshotStep: null });
    }

    function applySnapshots(run: number): void {
      applying = applying.then(async () => {
        const next = pending;
        pending = null;
        if (!next || run !== runId || get().trainStatus !== 'running') return;
        await replaceLive(`${runName} (training ${next.step}/${next.total})`, next.files, run, true);
        set({ trainSnapshotStep: next.step });
      });
    }

    /** A failed or cancelled run: the workspace is as it was before it. */
    function ended(run: number, error: unknown): void {
      if (run !== runId) return;
      flush();
      // At once, not after queued snapshot loads: removing the card aborts a load still under way.
      pending = null;
      const info = errorRecord(error);
      const cancelled = isCancelled(info);
      set({ trainStatus: cancelled ? 'cancelled' : 'failed', trainStage: null, trainError: cancelled ? null : info });
      removeLive();
      // A snapshot card whose replacement was already under way goes too.
      applying = applying.then(() => {
        if (run === runId && get().trainStatus !== 'running') removeLive();
      });
    }

    function finished(run: number, name: string, files: TrainedFile[], tokensPerSecond: number): void {
      if (run !== runId) return;
      flush();
      pending = null;
      applying = applying.then(async () => {
        const id = await replaceLive(name, files, run, false);
        if (!id) return;
        set({ trainStatus: 'done', trainStage: null, trainLiveId: null, trainResult: { name, files, checkpointId: id, tokensPerSecond } });
      });
    }

    const refuse = (message: string): void =>
      set({ trainStatus: 'failed', trainStage: null, trainError: errorRecord(new InputError(message)), trainProgress: null, trainCurve: [] });

    return {
      trainStatus: 'idle',
      trainStage: null,
      trainTokens: null,
      trainProgress: null,
      trainCurve: [],
      trainError: null,
      trainLiveId: null,
      trainSnapshotStep: null,
      trainResult: null,

      startTraining: (name, text, settings) => {
        if (get().trainStatus === 'running') return;
        const base = baseOf(get().checkpoints);
        if (!base) return refuse('Add a base checkpoint first: training fine-tunes the workspace base.');
        if (text.trim().length === 0) return refuse('The training text is empty.');
        if (text.length < MIN_TEXT_CHARS) return refuse(`The training text is too short (${text.length} characters; at least ${MIN_TEXT_CHARS}).`);
        if (!train) return refuse('Fine-tuning is not available in this session (no training Worker).');
        const trimmed = name.trim() || `${base.name}-ft`;
        flush();
        const run = ++runId;
        runName = trimmed;
        pending = null;
        buffered = [];
        const ctl = new AbortController();
        controller = ctl;
        set({ trainStatus: 'running', trainStage: 'loading', trainTokens: null, trainProgress: null, trainCurve: [], trainError: null, trainLiveId: null, trainSnapshotStep: null, trainResult: null });
        train
          .train(
            { name: base.name, files: base.files, text, settings },
            {
              signal: ctl.signal,
              onStatus: (r) => {
                if (run !== runId) return;
                flush();
                set((s) => ({ trainStage: r.stage, trainTokens: r.tokens ?? s.trainTokens }));
              },
              onProgress: (p) => {
                if (run !== runId) return;
                buffered.push({ step: p.step, loss: p.loss, ...(p.heldOutLoss !== undefined ? { heldOut: p.heldOutLoss } : {}) });
                latest = p;
                flushTimer ??= setTimeout(flush, FLUSH_MS);
              },
              onSnapshot: (r) => {
                if (run !== runId) return;
                flush();
                // The last step's snapshot is the result itself: train-done replaces the card with it.
                const total = get().trainProgress?.totalSteps;
                if (r.step < (total ?? Infinity)) {
                  pending = { step: r.step, total: total ?? r.step, files: r.files };
                  applySnapshots(run);
                }
              },
            },
          )
          .then(
            (result) => finished(run, trimmed, result.files, result.tokensPerSecond),
            (error: unknown) => ended(run, error),
          );
      },

      cancelTraining: () => {
        if (get().trainStatus !== 'running') return;
        // The client ends the run when the Worker confirms, or ends the Worker after CANCEL_GRACE_MS.
        controller?.abort();
      },

      trainingZip: () => {
        const r = get().trainResult;
        if (!r) return null;
        const z = new ZipWriter();
        for (const f of r.files) z.add(`${r.name}/${f.path}`, f.bytes);
        return new Blob(z.finish() as BlobPart[], { type: 'application/zip' });
      },
    };
  };
};
