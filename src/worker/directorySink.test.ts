/* eslint-disable no-restricted-imports -- the test reads the fixture folders from disk (the Worker itself never does) */
import { resolve, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportMerged, openCheckpoint, parseRecipe, planMerge, streamMerge, bytesSource, type MergedTensor, type MergeJob } from '../engine/index.ts';
import { folderFileSet } from '../node/files.ts';
import { withGpu } from '../testing/gpu.ts';
import { directorySink, folderName } from './directorySink.ts';

/**
 * "Save merged model to a folder…" over the File System Access API, here on an in-memory stand-in
 * with the API's semantics (createWritable writes a swap file that replaces the target on close;
 * a missing entry is a NotFoundError, a file where a folder is asked for a TypeMismatchError).
 * The real API is what Chromium gives the Worker.
 */
class FakeFile {
  kind = 'file' as const;
  constructor(public data = new Uint8Array()) {}
  async createWritable(): Promise<{ write(c: Uint8Array): Promise<void>; close(): Promise<void>; abort(): Promise<void> }> {
    const parts: Uint8Array[] = [];
    return {
      write: async (c) => void parts.push(c.slice()),
      close: async () => {
        this.data = new Uint8Array(Buffer.concat(parts));
      },
      abort: async () => {},
    };
  }
  async getFile(): Promise<Blob> {
    return new Blob([this.data]);
  }
}

class FakeDir {
  kind = 'directory' as const;
  entries = new Map<string, FakeDir | FakeFile>();
  async getDirectoryHandle(name: string, o: { create?: boolean } = {}): Promise<FakeDir> {
    const e = this.entries.get(name);
    if (e instanceof FakeDir) return e;
    if (e) throw new DOMException('a file', 'TypeMismatchError');
    if (!o.create) throw new DOMException('missing', 'NotFoundError');
    const d = new FakeDir();
    this.entries.set(name, d);
    return d;
  }
  async getFileHandle(name: string, o: { create?: boolean } = {}): Promise<FakeFile> {
    const e = this.entries.get(name);
    if (e instanceof FakeFile) return e;
    if (e) throw new DOMException('a folder', 'TypeMismatchError');
    if (!o.create) throw new DOMException('missing', 'NotFoundError');
    const f = new FakeFile();
    this.entries.set(name, f);
    return f;
  }
  async removeEntry(name: string): Promise<void> {
    if (!this.entries.delete(name)) throw new DOMException('missing', 'NotFoundError');
  }
  /** name → bytes of every file below, for before/after comparisons. */
  flat(prefix = ''): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [n, e] of this.entries) {
      if (e instanceof FakeDir) Object.assign(out, e.flat(`${prefix}${n}/`));
      else out[`${prefix}${n}`] = Buffer.from(e.data).toString('base64');
    }
    return out;
  }
}

const FIX = resolve('e2e/fixtures');

async function job(): Promise<MergeJob> {
  const open = async (dir: string, name: string) => openCheckpoint(await folderFileSet(join(FIX, dir)), name);
  const base = await open('tiny-gpt2', 'tiny-gpt2');
  const models = [await open('tiny-gpt2-ft-a', 'a')];
  const recipe = parseRecipe({ version: 1, method: 'task_arithmetic', base: 'tiny-gpt2', models: [{ model: 'a', parameters: { weight: 0.5 } }], parameters: {} });
  return { recipe, base, models };
}

async function* failingAfter(tensors: AsyncIterable<MergedTensor>, count: number): AsyncGenerator<MergedTensor> {
  let i = 0;
  for await (const t of tensors) {
    if (i++ === count) throw new Error('simulated failure mid-export');
    yield t;
  }
}

describe('directorySink (File System Access export)', () => {
  it('writes into a new subfolder of the chosen folder and never opens an existing entry; config.json last', async () => {
    await withGpu(async (rt) => {
      const j = await job();
      // The chosen folder holds the base's own files and an earlier export under the default name.
      const chosen = new FakeDir();
      (await chosen.getFileHandle('model.safetensors', { create: true })).data = new Uint8Array([1, 2, 3]);
      (await chosen.getFileHandle('config.json', { create: true })).data = new Uint8Array([123, 125]);
      (await (await chosen.getDirectoryHandle('merged-tiny-gpt2', { create: true })).getFileHandle('config.json', { create: true })).data = new Uint8Array([7]);
      (await chosen.getFileHandle('merged-tiny-gpt2-2', { create: true })).data = new Uint8Array([8]);
      const before = chosen.flat();
      const sink = directorySink(chosen as unknown as FileSystemDirectoryHandle, 'merged-tiny-gpt2');
      const result = await exportMerged(sink, j.base, planMerge(j), streamMerge(rt, j, { output: 'bytes' }));
      expect(sink.folder).toBe('merged-tiny-gpt2-3');
      expect(result.files.at(-1)).toBe('config.json');
      const after = chosen.flat();
      for (const [k, v] of Object.entries(before)) expect(after[k], k).toBe(v);
      const written = (await chosen.getDirectoryHandle('merged-tiny-gpt2-3')).entries;
      const files = new Map([...written].map(([k, v]) => [k, bytesSource((v as FakeFile).data, k)]));
      const back = await openCheckpoint(files, 'back');
      expect([...back.tensors.keys()]).toEqual([...j.base.tensors.keys()]);
    });
  });

  it('a failed or cancelled export removes its subfolder: the chosen folder is as before', async () => {
    await withGpu(async (rt) => {
      const j = await job();
      const chosen = new FakeDir();
      (await chosen.getFileHandle('notes.txt', { create: true })).data = new Uint8Array([1]);
      const before = chosen.flat();
      const sink = directorySink(chosen as unknown as FileSystemDirectoryHandle, 'merged-tiny-gpt2');
      await expect(exportMerged(sink, j.base, planMerge(j), failingAfter(streamMerge(rt, j, { output: 'bytes' }), 4))).rejects.toThrow('simulated failure');
      expect(chosen.flat()).toEqual(before);
      expect([...chosen.entries.keys()]).toEqual(['notes.txt']);
    });
  });

  it('folder names from checkpoint names have no separators or control characters', () => {
    expect(folderName('merged-tiny/../gpt2')).toBe('merged-tiny-..-gpt2');
    expect(folderName('merged-\u001b]0;x\u0007')).toBe('merged--]0;x-');
    expect(folderName('...')).toBe('merged-model');
  });
});
