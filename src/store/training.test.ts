import { describe, expect, it } from 'vitest';
import { createStore } from 'zustand/vanilla';
import type { FileEntry } from '../worker/protocol.ts';
import type { TrainReply, TrainRequest } from '../worker/trainProtocol.ts';
import { partialize } from './persist.ts';
import { CANCEL_GRACE_MS, DEFAULT_TRAIN_SETTINGS, createTrainingStore, type TrainWorkerLike } from './training.ts';
import type { CheckpointEntry, CoefficientState, StudioState } from './types.ts';

/** The slice of the studio store training uses: cards, coefficients, add/remove. */
function fakeStudio() {
  const added: string[] = [];
  const store = createStore<{ checkpoints: CheckpointEntry[]; coefficients: Record<string, CoefficientState> } & Pick<StudioState, 'addCheckpoint' | 'removeCheckpoint'>>()((set) => ({
    checkpoints: [{ id: 'b', name: 'base', role: 'base', status: 'ready', summary: null, error: null, progress: null, files: [] }],
    coefficients: {},
    addCheckpoint: async (name: string, files: FileEntry[], restore?: { id: string; transient?: boolean }) => {
      added.push(restore?.transient ? `${name} [transient]` : name);
      await new Promise((r) => setTimeout(r, 1));
      const id = restore!.id;
      set((s) => ({ checkpoints: [...s.checkpoints, { id, name, role: 'finetune', status: 'ready', summary: null, error: null, progress: null, files, transient: restore?.transient }] }));
      return id;
    },
    removeCheckpoint: (id: string) => set((s) => ({ checkpoints: s.checkpoints.filter((c) => c.id !== id) })),
  }));
  return { store: store as unknown as Parameters<typeof createTrainingStore>[0], added, names: () => store.getState().checkpoints.map((c) => c.name) };
}

/**
 * A scripted training Worker: `steps` progress messages, a snapshot at step 2, then done; cancel
 * ends it, unless `deaf` (a Worker stuck in a long step that never reads the cancel).
 */
function fakeTrainWorker(steps: number, deaf = false) {
  const listeners: ((e: MessageEvent<TrainReply>) => void)[] = [];
  const sent: TrainRequest[] = [];
  let cancelled = false;
  const emit = (r: TrainReply): void => listeners.forEach((l) => l({ data: r } as MessageEvent<TrainReply>));
  const files = [{ path: 'model.safetensors', bytes: new Uint8Array([1, 2, 3]) }];
  const worker: TrainWorkerLike = {
    postMessage(m) {
      sent.push(m);
      if (m.kind === 'train-cancel') {
        cancelled = !deaf;
        return;
      }
      void (async () => {
        emit({ kind: 'train-status', id: m.id, stage: 'training', tokens: 500 });
        for (let s = 1; s <= steps; s++) {
          await new Promise((r) => setTimeout(r, 2));
          if (cancelled) return emit({ kind: 'train-error', id: m.id, error: { name: 'CancelledError', code: 'cancelled', message: 'cancelled' } });
          emit({ kind: 'train-progress', id: m.id, progress: { step: s, totalSteps: steps, loss: 5 - s / 10, lr: 1e-3, tokensPerSecond: 100, elapsedSeconds: s, etaSeconds: steps - s } });
          if (s === 2) emit({ kind: 'train-snapshot', id: m.id, step: 2, weights: {}, files });
        }
        emit({ kind: 'train-done', id: m.id, files, losses: [], heldOut: [], tokensPerSecond: 100 });
      })();
    },
    addEventListener(type: 'message' | 'error', l: (e: never) => void) {
      if (type === 'message') listeners.push(l as (e: MessageEvent<TrainReply>) => void);
    },
    terminate() {
      terminated = true;
      cancelled = true;
    },
  };
  let terminated = false;
  return { worker, sent, terminated: () => terminated };
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(cond()).toBe(true);
};

describe('training store', () => {
  it('a snapshot becomes a "training" card, the finished run replaces it with the fine-tune', async () => {
    const studio = fakeStudio();
    const w = fakeTrainWorker(6);
    const t = createTrainingStore(studio.store, () => w.worker);
    t.getState().start('ft-x', 'x'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    expect(w.sent[0]).toMatchObject({ kind: 'train-start', name: 'base', text: 'x'.repeat(200) });
    await until(() => t.getState().status === 'done');
    // Snapshots are transient (neither stored nor persisted: a reload ends the run); the result is kept.
    expect(studio.added).toEqual(['ft-x (training 2/6) [transient]', 'ft-x']);
    expect(studio.names()).toEqual(['base', 'ft-x']);
    const kept = studio.store.getState().checkpoints.find((c) => c.name === 'ft-x')!;
    expect(kept.transient).toBeFalsy();
    const snapshot = { ...kept, id: 'snap', name: 'ft-x (training 2/6)', files: kept.files, transient: true };
    const persisted = partialize({ ...(studio.store.getState() as unknown as StudioState), validationSets: [], checkpoints: [...studio.store.getState().checkpoints, snapshot] });
    expect(persisted.checkpoints.map((c) => c.name)).toEqual(['ft-x']);
    expect(t.getState().curve.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const zip = t.getState().zip()!;
    expect(zip.size).toBeGreaterThan(3);
  });

  it('cancel removes the training card and adds nothing', async () => {
    const studio = fakeStudio();
    const w = fakeTrainWorker(200);
    const t = createTrainingStore(studio.store, () => w.worker);
    t.getState().start('ft-y', 'y'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    await until(() => studio.names().includes('ft-y (training 2/200)'));
    t.getState().cancel();
    await until(() => t.getState().status === 'cancelled');
    expect(studio.names()).toEqual(['base']);
    expect(t.getState().result).toBeNull();
  });

  it('a Worker that does not confirm a cancel within the grace period is terminated; the next run gets a fresh one', async () => {
    const studio = fakeStudio();
    const workers = [fakeTrainWorker(100_000, true), fakeTrainWorker(6)];
    let made = 0;
    const t = createTrainingStore(studio.store, () => workers[made++]!.worker);
    t.getState().start('ft-z', 'z'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    await until(() => studio.names().includes('ft-z (training 2/100000)'));
    const t0 = performance.now();
    t.getState().cancel();
    await new Promise((r) => setTimeout(r, CANCEL_GRACE_MS / 2));
    expect(t.getState().status).toBe('running');
    await until(() => t.getState().status === 'cancelled');
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(CANCEL_GRACE_MS - 5);
    expect(workers[0]!.terminated()).toBe(true);
    expect(studio.names()).toEqual(['base']);
    t.getState().start('ft-z', 'z'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    await until(() => t.getState().status === 'done');
    expect(made).toBe(2);
    expect(studio.names()).toEqual(['base', 'ft-z']);
  });

  it('empty or tiny text and a missing base are refused before the Worker is asked', () => {
    const studio = fakeStudio();
    const w = fakeTrainWorker(1);
    const t = createTrainingStore(studio.store, () => w.worker);
    t.getState().start('a', '   ', DEFAULT_TRAIN_SETTINGS);
    expect(t.getState().error?.message).toMatch(/empty/);
    t.getState().start('a', 'short text', DEFAULT_TRAIN_SETTINGS);
    expect(t.getState().error?.message).toMatch(/too short/);
    studio.store.setState({ checkpoints: [] });
    t.getState().start('a', 'z'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    expect(t.getState().error?.message).toMatch(/base/);
    expect(w.sent).toEqual([]);
    expect(studio.names()).toEqual([]);
  });
});
