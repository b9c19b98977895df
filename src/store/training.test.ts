import { describe, expect, it } from 'vitest';
import type { CheckpointSummary } from '../engine/index.ts';
import type { EngineApi, WorkspaceKind } from '../worker/client.ts';
import type { FileEntry, RequestBodies, Results } from '../worker/protocol.ts';
import { CANCEL_GRACE_MS, TrainClient, type TrainWorkerLike } from '../worker/trainClient.ts';
import type { TrainReply, TrainRequest } from '../worker/trainProtocol.ts';
import { createStudioStore, DEFAULT_TRAIN_SETTINGS, type StudioState, type StudioStore } from './index.ts';
import { partialize } from './persist.ts';

/** An engine that loads anything and measures every merge at perplexity 5. */
function fakeEngine(): EngineApi {
  const call = async <K extends WorkspaceKind>(kind: K, body: RequestBodies[K]): Promise<Results[K]> => {
    const b = body as never as Record<string, unknown>;
    const one = (set: string) => ({ set, ppl: 5, nllMean: 0, tokens: 1, predicted: 1 });
    const answers: Partial<Record<WorkspaceKind, () => unknown>> = {
      load: () => ({ name: b.name, parameterCount: 1 }),
      compat: () => Object.fromEntries((b.models as string[]).map((m) => [m, []])),
      reference: () => (b.sets as string[]).map(one),
      evaluate: () => ({ perplexities: (b.sets as string[]).map(one), mode: 'resident', setupMs: 0, mergeMs: 0, evalMs: 0, totalMs: 0 }),
    };
    await new Promise((r) => setTimeout(r, 1));
    return (answers[kind]?.() ?? null) as Results[K];
  };
  return {
    init: async () => ({ vendor: 'x', architecture: 'y', description: '', features: [], maxBufferSize: 1, maxStorageBufferBindingSize: 1 }),
    inspect: async () => ({}) as CheckpointSummary,
    onDeviceLost: () => () => {},
    onCrash: () => () => {},
    restart: () => {},
    dispose: () => {},
    call,
  };
}

/**
 * The studio store with a base card and the training Worker(s) given; the workspace actions the
 * training slice uses are wrapped to record their calls (what was added, removed, copied).
 */
async function studioWith(workers: () => TrainWorkerLike) {
  const store: StudioStore = createStudioStore({ engine: fakeEngine(), train: new TrainClient(workers) });
  await store.getState().addCheckpoint('base', [], { id: 'b', role: 'base' });
  const added: string[] = [];
  const removed: string[] = [];
  const copied: [string, string][] = [];
  const { addCheckpoint, removeCheckpoint, copyCoefficient } = store.getState();
  store.setState({
    addCheckpoint: (name: string, files: FileEntry[], restore?: Parameters<StudioState['addCheckpoint']>[2]) => {
      added.push(restore?.transient ? `${name} [transient]` : name);
      return addCheckpoint(name, files, restore);
    },
    removeCheckpoint: (id: string) => {
      removed.push(store.getState().checkpoints.find((c) => c.id === id)?.name ?? id);
      removeCheckpoint(id);
    },
    copyCoefficient: (from: string, to: string) => {
      copied.push([from, to]);
      copyCoefficient(from, to);
    },
  });
  return { store, added, removed, copied, names: () => store.getState().checkpoints.map((c) => c.name) };
}

/**
 * A scripted training Worker: `steps` progress messages, a snapshot at each of `snapshots` (step 2),
 * then done; cancel ends it, unless `deaf` (a Worker stuck in a long step that never reads the
 * cancel); `crash` fires its error event.
 */
function fakeTrainWorker(steps: number, deaf = false, snapshots = [2]) {
  const listeners: ((e: MessageEvent<TrainReply>) => void)[] = [];
  const errorListeners: ((e: Event) => void)[] = [];
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
          if (snapshots.includes(s)) emit({ kind: 'train-snapshot', id: m.id, step: s, weights: {}, files });
        }
        emit({ kind: 'train-done', id: m.id, files, losses: [], heldOut: [], tokensPerSecond: 100 });
      })();
    },
    addEventListener(type: 'message' | 'error' | 'messageerror', l: (e: never) => void) {
      if (type === 'message') listeners.push(l as (e: MessageEvent<TrainReply>) => void);
      if (type === 'error') errorListeners.push(l as (e: Event) => void);
    },
    terminate() {
      terminated = true;
      cancelled = true;
    },
  };
  let terminated = false;
  const crash = (message: string): void => errorListeners.forEach((l) => l({ message, preventDefault() {} } as unknown as Event));
  return { worker, sent, crash, terminated: () => terminated };
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(cond()).toBe(true);
};

describe('training slice', () => {
  it('a snapshot becomes a "training" card, the finished run replaces it with the fine-tune', async () => {
    const w = fakeTrainWorker(6);
    const studio = await studioWith(() => w.worker);
    const t = studio.store;
    t.getState().startTraining('ft-x', 'x'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    expect(w.sent[0]).toMatchObject({ kind: 'train-start', name: 'base', text: 'x'.repeat(200) });
    await until(() => t.getState().trainStatus === 'done');
    // Snapshots are transient (neither stored nor persisted: a reload ends the run); the result is kept.
    expect(studio.added).toEqual(['ft-x (training 2/6) [transient]', 'ft-x']);
    expect(studio.names()).toEqual(['base', 'ft-x']);
    const kept = studio.store.getState().checkpoints.find((c) => c.name === 'ft-x')!;
    expect(kept.transient).toBeFalsy();
    const snapshot = { ...kept, id: 'snap', name: 'ft-x (training 2/6)', files: kept.files, transient: true };
    const persisted = partialize({ ...studio.store.getState(), validationSets: [], checkpoints: [...studio.store.getState().checkpoints, snapshot] });
    expect(persisted.checkpoints.map((c) => c.name)).toEqual(['ft-x']);
    expect(t.getState().trainCurve.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const zip = t.getState().trainingZip()!;
    expect(zip.size).toBeGreaterThan(3);
  });

  it('cancel removes the training card and adds nothing', async () => {
    const w = fakeTrainWorker(200);
    const studio = await studioWith(() => w.worker);
    const t = studio.store;
    t.getState().startTraining('ft-y', 'y'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    await until(() => studio.names().includes('ft-y (training 2/200)'));
    t.getState().cancelTraining();
    await until(() => t.getState().trainStatus === 'cancelled');
    expect(studio.names()).toEqual(['base']);
    expect(t.getState().trainResult).toBeNull();
  });

  it('a Worker that does not confirm a cancel within the grace period is terminated; the next run gets a fresh one', async () => {
    const workers = [fakeTrainWorker(100_000, true), fakeTrainWorker(6)];
    let made = 0;
    const studio = await studioWith(() => workers[made++]!.worker);
    const t = studio.store;
    t.getState().startTraining('ft-z', 'z'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    await until(() => studio.names().includes('ft-z (training 2/100000)'));
    const t0 = performance.now();
    t.getState().cancelTraining();
    await new Promise((r) => setTimeout(r, CANCEL_GRACE_MS / 2));
    expect(t.getState().trainStatus).toBe('running');
    await until(() => t.getState().trainStatus === 'cancelled');
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(CANCEL_GRACE_MS - 5);
    expect(workers[0]!.terminated()).toBe(true);
    expect(studio.names()).toEqual(['base']);
    t.getState().startTraining('ft-z', 'z'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    await until(() => t.getState().trainStatus === 'done');
    expect(made).toBe(2);
    expect(studio.names()).toEqual(['base', 'ft-z']);
  });

  it('empty or tiny text and a missing base are refused before the Worker is asked', async () => {
    const w = fakeTrainWorker(1);
    const studio = await studioWith(() => w.worker);
    const t = studio.store;
    t.getState().startTraining('a', '   ', DEFAULT_TRAIN_SETTINGS);
    expect(t.getState().trainError?.message).toMatch(/empty/);
    t.getState().startTraining('a', 'short text', DEFAULT_TRAIN_SETTINGS);
    expect(t.getState().trainError?.message).toMatch(/too short/);
    studio.store.setState({ checkpoints: [] });
    t.getState().startTraining('a', 'z'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    expect(t.getState().trainError?.message).toMatch(/base/);
    expect(w.sent).toEqual([]);
    expect(studio.names()).toEqual([]);
  });

  it('changes the workspace only through its actions: the live card keeps its slider through every snapshot into the result', async () => {
    const w = fakeTrainWorker(60, false, [10, 20, 30]);
    const studio = await studioWith(() => w.worker);
    const t = studio.store;
    t.getState().startTraining('ft-w', 'w'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    await until(() => studio.names().includes('ft-w (training 10/60)'));
    const first = t.getState().trainLiveId!;
    await until(() => t.getState().coefficients[first] !== undefined);
    t.getState().setCoefficient(first, 0.3);
    await until(() => t.getState().trainStatus === 'done');
    const result = t.getState().trainResult!;
    expect(t.getState().coefficients[result.checkpointId]?.value).toBe(0.3);
    // Every snapshot card was added and removed by the workspace's actions, the slider moved by copyCoefficient.
    expect(studio.added.filter((n) => n.endsWith('[transient]'))).toEqual(studio.removed.map((n) => `${n} [transient]`));
    expect(studio.copied.map(([, to]) => to).at(-1)).toBe(result.checkpointId);
    expect(studio.copied.every(([from]) => from !== result.checkpointId)).toBe(true);
    expect(studio.names()).toEqual(['base', 'ft-w']);
  });

  it('a crashed training Worker fails the run with a typed error, removes its card, and the next run starts a fresh Worker', async () => {
    const workers = [fakeTrainWorker(100_000), fakeTrainWorker(6)];
    let made = 0;
    const studio = await studioWith(() => workers[made++]!.worker);
    const t = studio.store;
    t.getState().startTraining('ft-c', 'c'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    await until(() => studio.names().includes('ft-c (training 2/100000)'));
    workers[0]!.crash('out of memory');
    await until(() => t.getState().trainStatus === 'failed');
    expect(t.getState().trainError).toMatchObject({ code: 'worker-crashed', message: 'The training Worker crashed: out of memory' });
    expect(studio.names()).toEqual(['base']);
    t.getState().startTraining('ft-c', 'c'.repeat(200), DEFAULT_TRAIN_SETTINGS);
    await until(() => t.getState().trainStatus === 'done');
    expect(made).toBe(2);
    expect(studio.names()).toEqual(['base', 'ft-c']);
  });
});
