import { describe, expect, it } from 'vitest';
import { CancelledError, InputError, SafetensorsError, type TrainProgress } from '../engine/index.ts';
import { WorkerCrashedError, toErrorInfo } from './errors.ts';
import { CANCEL_GRACE_MS, TrainClient, type TrainWorkerLike } from './trainClient.ts';
import type { TrainReply, TrainRequest, TrainStartBody } from './trainProtocol.ts';

/**
 * A scripted training Worker: each `train-start` is answered by `answer(request, emit)`; replies
 * arrive asynchronously like postMessage. `deaf`: never confirms a cancel (stuck in a long step).
 */
function fakeTrainWorker(answer: (m: Extract<TrainRequest, { kind: 'train-start' }>, emit: (r: TrainReply) => void, cancelled: () => boolean) => Promise<void>, deaf = false) {
  const listeners: { message: ((e: MessageEvent<TrainReply>) => void)[]; error: ((e: Event) => void)[] } = { message: [], error: [] };
  const sent: TrainRequest[] = [];
  const cancels = new Set<number>();
  let terminated = false;
  const emit = (r: TrainReply): void => {
    setTimeout(() => {
      if (!terminated) for (const l of listeners.message) l({ data: r } as MessageEvent<TrainReply>);
    }, 0);
  };
  const worker: TrainWorkerLike = {
    postMessage(m) {
      sent.push(m);
      if (m.kind === 'train-cancel') {
        if (!deaf) cancels.add(m.target);
        return;
      }
      // A terminated Worker runs nothing more.
      void answer(m, emit, () => cancels.has(m.id) || terminated);
    },
    terminate() {
      terminated = true;
    },
    addEventListener(type: 'message' | 'error' | 'messageerror', l: (e: never) => void) {
      if (type === 'message') listeners.message.push(l as (e: MessageEvent<TrainReply>) => void);
      else if (type === 'error') listeners.error.push(l as (e: Event) => void);
    },
  };
  const crash = (message: string): void => {
    let prevented = false;
    for (const l of listeners.error) l({ message, preventDefault: () => (prevented = true) } as unknown as Event);
    expect(prevented).toBe(true);
  };
  return { worker, sent, crash, terminated: () => terminated };
}

const files = [{ path: 'model.safetensors', bytes: new Uint8Array([1, 2, 3]) }];
const progressAt = (step: number, totalSteps: number): TrainProgress => ({ step, totalSteps, loss: 5 - step / 10, lr: 1e-3, tokensPerSecond: 100, elapsedSeconds: step, etaSeconds: totalSteps - step });
const settings: TrainStartBody['settings'] = {
  steps: 3, batchSize: 1, seqLen: 8, lr: 1e-3, warmupSteps: 0, weightDecay: 0, trainable: { kind: 'all' }, heldOutFraction: 0, evalEvery: 0, snapshotEvery: 2, seed: 1,
};
const body = (name = 'base'): TrainStartBody => ({ name, files: [], text: 'x'.repeat(100), settings });
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `steps` steps (2 ms each) with a snapshot at step 2, then done; a cancel ends it with 'cancelled'. */
const scripted =
  (steps: number) =>
  async (m: Extract<TrainRequest, { kind: 'train-start' }>, emit: (r: TrainReply) => void, cancelled: () => boolean): Promise<void> => {
    emit({ kind: 'train-status', id: m.id, stage: 'training', tokens: 500 });
    for (let s = 1; s <= steps; s++) {
      await wait(2);
      if (cancelled()) return emit({ kind: 'train-error', id: m.id, error: toErrorInfo(new CancelledError()) });
      emit({ kind: 'train-progress', id: m.id, progress: progressAt(s, steps) });
      if (s === 2) emit({ kind: 'train-snapshot', id: m.id, step: 2, weights: {}, files });
    }
    emit({ kind: 'train-done', id: m.id, files, losses: [4.9, 4.8], heldOut: [{ step: 2, loss: 5 }], tokensPerSecond: 123 });
  };

describe('TrainClient', () => {
  it('sends a start with an id and hands each reply kind to its callback; done resolves with the result', async () => {
    const fake = fakeTrainWorker(scripted(3));
    const client = new TrainClient(() => fake.worker);
    const seen: string[] = [];
    const result = await client.train(body('base'), {
      onStatus: (r) => seen.push(`status ${r.stage} ${r.tokens}`),
      onProgress: (p) => seen.push(`step ${p.step}/${p.totalSteps}`),
      onSnapshot: (r) => seen.push(`snapshot ${r.step} ${r.files.map((f) => f.path).join()}`),
    });
    expect(fake.sent[0]).toMatchObject({ kind: 'train-start', id: 1, name: 'base', text: 'x'.repeat(100) });
    expect(seen).toEqual(['status training 500', 'step 1/3', 'step 2/3', 'snapshot 2 model.safetensors', 'step 3/3']);
    expect(result).toEqual({ files, losses: [4.9, 4.8], heldOut: [{ step: 2, loss: 5 }], tokensPerSecond: 123 });
    // A second run on the same Worker gets its own id; replies to another id reach nobody else.
    await client.train(body('again'));
    expect(fake.sent.map((m) => m.kind === 'train-start' && m.id)).toEqual([1, 2]);
  });

  it('rejects with the typed error the Worker reported, naming the file', async () => {
    const fake = fakeTrainWorker(async (m, emit) => {
      const error = m.name === 'bad' ? new SafetensorsError('header is cut short', { file: 'model.safetensors' }) : new InputError('sequence length 4096 exceeds the model positions (64)');
      emit({ kind: 'train-error', id: m.id, error: toErrorInfo(error) });
    });
    const client = new TrainClient(() => fake.worker);
    const bad = await client.train(body('bad')).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(SafetensorsError);
    expect((bad as SafetensorsError).file).toBe('model.safetensors');
    const input = await client.train(body('long')).catch((e: unknown) => e);
    expect(input).toBeInstanceOf(InputError);
    expect((input as Error).message).toContain('sequence length 4096');
  });

  it('an abort becomes a train-cancel; the Worker confirms and the run rejects with CancelledError, the Worker kept', async () => {
    const fake = fakeTrainWorker(scripted(10_000));
    let made = 0;
    const client = new TrainClient(() => (made++, fake.worker));
    const controller = new AbortController();
    let steps = 0;
    const run = client.train(body(), { signal: controller.signal, onProgress: () => steps++ });
    while (steps < 3) await wait(2);
    const t0 = performance.now();
    controller.abort();
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(performance.now() - t0).toBeLessThan(CANCEL_GRACE_MS / 2);
    expect(fake.sent.slice(1)).toEqual([{ kind: 'train-cancel', target: 1 }]);
    expect(fake.terminated()).toBe(false);
    const next = new AbortController();
    const again = client.train(body(), { signal: next.signal });
    await wait(10);
    next.abort();
    await expect(again).rejects.toBeInstanceOf(CancelledError);
    expect(made).toBe(1);
  });

  it('a Worker that does not confirm a cancel within the grace period is terminated; the next run gets a fresh one', async () => {
    const workers = [fakeTrainWorker(scripted(100_000), true), fakeTrainWorker(scripted(3))];
    let made = 0;
    const client = new TrainClient(() => workers[made++]!.worker);
    const controller = new AbortController();
    let settled = false;
    const run = client.train(body(), { signal: controller.signal });
    void run.catch(() => undefined).finally(() => (settled = true));
    await wait(10);
    const t0 = performance.now();
    controller.abort();
    await wait(CANCEL_GRACE_MS / 2);
    expect(settled).toBe(false);
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(CANCEL_GRACE_MS - 5);
    expect(workers[0]!.terminated()).toBe(true);
    await expect(client.train(body())).resolves.toMatchObject({ tokensPerSecond: 123 });
    expect(made).toBe(2);
  });

  it('a crashed Worker rejects its run with WorkerCrashedError and is replaced on the next run', async () => {
    const workers = [fakeTrainWorker(scripted(100_000)), fakeTrainWorker(scripted(3))];
    let made = 0;
    const client = new TrainClient(() => workers[made++]!.worker);
    const run = client.train(body());
    await wait(10);
    workers[0]!.crash('RangeError: WebAssembly.Memory(): could not allocate memory');
    const error = await run.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkerCrashedError);
    expect((error as Error).message).toBe('The training Worker crashed: RangeError: WebAssembly.Memory(): could not allocate memory');
    expect(toErrorInfo(error).code).toBe('worker-crashed');
    expect(workers[0]!.terminated()).toBe(true);
    await expect(client.train(body())).resolves.toMatchObject({ files });
    expect(made).toBe(2);
  });

  it('an already aborted signal rejects without starting a Worker', async () => {
    let made = 0;
    const client = new TrainClient(() => (made++, fakeTrainWorker(scripted(1)).worker));
    const controller = new AbortController();
    controller.abort();
    await expect(client.train(body(), { signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
    expect(made).toBe(0);
  });
});
