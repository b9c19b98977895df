import { describe, expect, it } from 'vitest';
import { CancelledError, GpuDeviceLostError, SafetensorsError, type AdapterSummary, type CheckpointSummary } from '../engine/index.ts';
import type { EngineApi, RequestOptions } from '../worker/client.ts';
import { WorkerCrashedError, type EngineError } from '../worker/errors.ts';
import type { FileEntry } from '../worker/protocol.ts';
import { createStudioStore, selectCheckpoints, selectGpuStatus, selectNotifications } from './index.ts';

const adapter: AdapterSummary = { vendor: 'google', architecture: 'swiftshader', description: '', features: [], maxBufferSize: 1, maxStorageBufferBindingSize: 1 };

/** A scripted engine: inspect answers per checkpoint name. */
function fakeEngine(answers: Record<string, (signal?: AbortSignal) => Promise<CheckpointSummary>>) {
  const lost = new Set<(e: EngineError) => void>();
  const crash = new Set<(e: WorkerCrashedError) => void>();
  let restarts = 0;
  const engine: EngineApi = {
    init: async () => adapter,
    inspect: (name: string, _files: FileEntry[], options: RequestOptions = {}) => {
      const answer = answers[name];
      if (!answer) throw new Error(`no scripted answer for ${name}`);
      return answer(options.signal);
    },
    onDeviceLost: (l) => (lost.add(l), () => lost.delete(l)),
    onCrash: (l) => (crash.add(l), () => crash.delete(l)),
    restart: () => void (restarts += 1),
    dispose: () => {},
  };
  return {
    engine,
    loseDevice: (e: EngineError) => lost.forEach((l) => l(e)),
    crash: (e: WorkerCrashedError) => crash.forEach((l) => l(e)),
    restarts: () => restarts,
  };
}

const summary = (name: string) => ({ name, parameterCount: 123 }) as unknown as CheckpointSummary;

describe('studio store', () => {
  it('connects the GPU and records the adapter', async () => {
    const store = createStudioStore(fakeEngine({}));
    expect(selectGpuStatus(store.getState())).toBe('idle');
    await store.getState().connectGpu();
    expect(selectGpuStatus(store.getState())).toBe('ready');
    expect(store.getState().adapter?.architecture).toBe('swiftshader');
  });

  it('keeps loaded checkpoints when a later one fails, and reports the file', async () => {
    const store = createStudioStore(
      fakeEngine({
        good: async () => summary('good'),
        bad: async () => {
          throw new SafetensorsError('header is cut short', { file: 'model.safetensors' });
        },
      }),
    );
    await store.getState().addCheckpoint('good', []);
    await store.getState().addCheckpoint('bad', []);
    const [good, bad] = selectCheckpoints(store.getState());
    expect(good).toMatchObject({ name: 'good', status: 'ready', role: 'base' });
    expect(good?.summary?.parameterCount).toBe(123);
    expect(bad).toMatchObject({ name: 'bad', status: 'failed', role: 'finetune' });
    expect(bad?.error?.file).toBe('model.safetensors');
    const [notice] = selectNotifications(store.getState());
    expect(notice).toMatchObject({ level: 'error', file: 'model.safetensors' });
    expect(notice?.message).toContain('header is cut short');
    store.getState().dismiss(notice?.id ?? '');
    expect(selectNotifications(store.getState())).toEqual([]);
    expect(selectCheckpoints(store.getState())).toHaveLength(2);
  });

  it('drops a cancelled checkpoint silently', async () => {
    const store = createStudioStore(
      fakeEngine({
        slow: (signal) => new Promise((_r, reject) => signal?.addEventListener('abort', () => reject(new CancelledError()))),
      }),
    );
    const done = store.getState().addCheckpoint('slow', []);
    const [entry] = selectCheckpoints(store.getState());
    expect(entry?.status).toBe('inspecting');
    store.getState().cancelCheckpoint(entry?.id ?? '');
    await done;
    expect(selectCheckpoints(store.getState())).toEqual([]);
    expect(selectNotifications(store.getState())).toEqual([]);
  });

  it('keeps one base: promoting a fine-tune demotes the old base', async () => {
    const store = createStudioStore(fakeEngine({ a: async () => summary('a'), b: async () => summary('b') }));
    const a = await store.getState().addCheckpoint('a', []);
    const b = await store.getState().addCheckpoint('b', []);
    store.getState().setRole(b, 'base');
    const roles = Object.fromEntries(selectCheckpoints(store.getState()).map((c) => [c.id, c.role]));
    expect(roles).toEqual({ [a]: 'finetune', [b]: 'base' });
    store.getState().removeCheckpoint(a);
    expect(selectCheckpoints(store.getState()).map((c) => c.id)).toEqual([b]);
  });

  it('marks the GPU lost or the engine crashed, keeps checkpoints, and restarts a crashed engine on reconnect', async () => {
    const fake = fakeEngine({ a: async () => summary('a') });
    const store = createStudioStore(fake);
    await store.getState().connectGpu();
    await store.getState().addCheckpoint('a', []);
    fake.loseDevice(new GpuDeviceLostError('GPU device lost (unknown): gone'));
    expect(selectGpuStatus(store.getState())).toBe('lost');
    fake.crash(new WorkerCrashedError('The engine Worker crashed'));
    expect(selectGpuStatus(store.getState())).toBe('crashed');
    expect(selectNotifications(store.getState()).map((n) => n.title)).toEqual(['GPU device lost', 'Engine stopped']);
    expect(selectCheckpoints(store.getState())).toHaveLength(1);
    await store.getState().connectGpu();
    expect(fake.restarts()).toBe(1);
    expect(selectGpuStatus(store.getState())).toBe('ready');
  });
});
