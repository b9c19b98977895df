import { describe, expect, it } from 'vitest';
import { CancelledError, GpuUnavailableError, SafetensorsError, type CheckpointSummary, type FileSet } from '../engine/index.ts';
import { EngineClient } from './client.ts';
import { InternalEngineError, WorkerCrashedError, fromErrorInfo, toErrorInfo } from './errors.ts';
import { fakeWorker, type FakeWorker } from './fake-worker.ts';
import type { HostDeps } from './host.ts';
import type { FileEntry } from './protocol.ts';

const summaryOf = (name: string, files: FileSet) => ({ name, files: [...files.keys()].sort() }) as unknown as CheckpointSummary;

const deps = (over: Partial<HostDeps> = {}): HostDeps => ({
  gpu: () => undefined,
  shaders: {},
  inspect: async (files, name, { onProgress }) => {
    onProgress({ stage: 'header', done: 1, total: 2 });
    // The source really reads the File's bytes.
    const config = files.get('config.json');
    if (!config) throw new SafetensorsError('missing config', { file: 'config.json' });
    await config.read(0, config.size);
    onProgress({ stage: 'tensors', done: 2, total: 2 });
    return summaryOf(name, files);
  },
  ...over,
});

const entries = (...paths: string[]): FileEntry[] => paths.map((path) => ({ path, file: new File(['{}'], path) }));

function setup(over: Partial<HostDeps> = {}): { client: EngineClient; workers: FakeWorker[] } {
  const workers: FakeWorker[] = [];
  const client = new EngineClient(() => {
    const w = fakeWorker(deps(over));
    workers.push(w);
    return w;
  });
  return { client, workers };
}

describe('error transport', () => {
  it('rebuilds DemError subclasses with file and tensor, without repeating the prefix', () => {
    const original = new SafetensorsError('header length 99 exceeds file size', { file: 'model.safetensors', tensor: 'wte.weight' });
    const info = toErrorInfo(original);
    expect(info).toEqual({
      name: 'SafetensorsError',
      code: 'safetensors',
      message: "model.safetensors, tensor 'wte.weight': header length 99 exceeds file size",
      file: 'model.safetensors',
      tensor: 'wte.weight',
    });
    const back = fromErrorInfo(structuredClone(info));
    expect(back).toBeInstanceOf(SafetensorsError);
    expect(back.message).toBe(original.message);
    expect(back.file).toBe('model.safetensors');
    expect(back.tensor).toBe('wte.weight');
    expect(fromErrorInfo(toErrorInfo(new CancelledError()))).toBeInstanceOf(CancelledError);
  });

  it('keeps the name of non-engine errors as internal', () => {
    const back = fromErrorInfo(toErrorInfo(new RangeError('offset out of range')));
    expect(back).toBeInstanceOf(InternalEngineError);
    expect(back.name).toBe('RangeError');
    expect(back.code).toBe('internal');
  });
});

describe('EngineClient over the host', () => {
  it('inspects files, relaying progress, with paths as given', async () => {
    const { client } = setup();
    const progress: string[] = [];
    const summary = await client.inspect('ckpt', entries('config.json', './model.safetensors'), { onProgress: (p) => progress.push(p.stage) });
    expect(summary).toEqual({ name: 'ckpt', files: ['config.json', 'model.safetensors'] });
    expect(progress).toEqual(['header', 'tensors']);
  });

  it('rejects with the typed engine error naming the file', async () => {
    const { client } = setup();
    const error = await client.inspect('ckpt', entries('model.safetensors')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafetensorsError);
    expect((error as SafetensorsError).file).toBe('config.json');
  });

  it('reports a missing WebGPU as GpuUnavailableError', async () => {
    const { client } = setup();
    await expect(client.init()).rejects.toBeInstanceOf(GpuUnavailableError);
  });

  it('turns an abort into a cancel message and a CancelledError; the engine sees its signal fire', async () => {
    let engineSignal: AbortSignal | undefined;
    const { client, workers } = setup({
      inspect: (_files, _name, { signal }) => {
        engineSignal = signal;
        return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new CancelledError())));
      },
    });
    const controller = new AbortController();
    const pending = client.inspect('slow', entries('config.json'), { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
    await new Promise((r) => setTimeout(r, 5));
    expect(engineSignal?.aborted).toBe(true);
    expect(workers[0]?.sent.map((m) => m.kind)).toEqual(['inspect', 'cancel']);
  });

  it('answers a cancel at once even when the engine ignores its signal', async () => {
    const { client } = setup({ inspect: () => new Promise(() => {}) });
    const controller = new AbortController();
    const pending = client.inspect('stuck', entries('config.json'), { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
  });

  it('fails everything in flight when the Worker crashes, and recovers after restart', async () => {
    const { client, workers } = setup({ inspect: () => new Promise(() => {}) });
    const crashes: WorkerCrashedError[] = [];
    client.onCrash((e) => crashes.push(e));
    const pending = client.inspect('a', entries('config.json'));
    workers[0]?.crash('boom');
    await expect(pending).rejects.toBeInstanceOf(WorkerCrashedError);
    await expect(client.init()).rejects.toBeInstanceOf(WorkerCrashedError);
    expect(crashes).toHaveLength(1);
    expect(crashes[0]?.message).toContain('boom');
    expect(workers[0]?.terminated).toBe(true);
    client.restart();
    expect(workers).toHaveLength(2);
    await expect(client.init()).rejects.toBeInstanceOf(GpuUnavailableError);
  });
});
