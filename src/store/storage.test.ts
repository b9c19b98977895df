import { describe, expect, it } from 'vitest';
import { StorageFullError, type CheckpointSummary } from '../engine/index.ts';
import type { FileHandles, HandleStore } from '../storage/handles.ts';
import type { LocalStore, StoredFile, StorageUsage } from '../storage/local.ts';
import type { EngineApi, WorkspaceKind } from '../worker/client.ts';
import type { FileEntry, RequestBodies, Results } from '../worker/protocol.ts';
import { createStudioStore } from './index.ts';
import { SAVE_MAX_WAIT_MS, WORKSPACE_BACKUP, WORKSPACE_FILE } from './storage.ts';

/**
 * The OPFS binding over an in-memory LocalStore (same contract: a write either lands whole or
 * throws StorageFullError and changes nothing). The real OPFS is covered by e2e/storage*.spec.ts.
 */
class MemoryStore {
  files = new Map<string, File>();
  /** Every path written, in order. */
  puts: string[] = [];
  constructor(public quota = Infinity) {}
  private bytes(): number {
    return [...this.files.values()].reduce((s, f) => s + f.size, 0);
  }
  async put(path: string, data: Blob, options: { onProgress?: (w: number, t: number) => void } = {}): Promise<void> {
    const old = this.files.get(path)?.size ?? 0;
    if (this.bytes() - old + data.size > this.quota) throw new StorageFullError(`not enough browser storage to keep ${path}`, { file: path });
    const bytes = new Uint8Array(await data.arrayBuffer());
    this.puts.push(path);
    options.onProgress?.(bytes.length, data.size);
    this.files.set(path, new File([bytes], path.split('/').pop()!));
  }
  async putText(path: string, text: string): Promise<void> {
    await this.put(path, new Blob([text]));
  }
  async file(path: string): Promise<File> {
    const f = this.files.get(path);
    if (!f) throw new DOMException('not found', 'NotFoundError');
    return f;
  }
  async list(): Promise<StoredFile[]> {
    return [...this.files].map(([path, f]) => ({ path, size: f.size, lastModified: 0 })).sort((a, b) => a.path.localeCompare(b.path));
  }
  async remove(path: string): Promise<void> {
    for (const k of [...this.files.keys()]) if (k === path || k.startsWith(`${path}/`)) this.files.delete(k);
  }
  async clear(): Promise<void> {
    this.files.clear();
  }
  async usage(): Promise<StorageUsage> {
    return { usage: this.bytes(), quota: this.quota, stored: this.bytes() };
  }
}

function fakeEngine(): { engine: EngineApi; loaded: Map<string, FileEntry[]> } {
  const loaded = new Map<string, FileEntry[]>();
  const call = async <K extends WorkspaceKind>(kind: K, body: RequestBodies[K]): Promise<Results[K]> => {
    const b = body as never as Record<string, unknown>;
    if (kind === 'load') {
      const files = b.files as FileEntry[];
      if (files.some((f) => f.file.size === 0)) throw new Error(`${files[0]!.path}: file is empty`);
      loaded.set(b.key as string, files);
      return { name: b.name, parameterCount: 1 } as unknown as Results[K];
    }
    if (kind === 'tokenize') return { tokens: 3 } as Results[K];
    if (kind === 'compat') return Object.fromEntries((b.models as string[]).map((m) => [m, []])) as unknown as Results[K];
    const one = (set: string) => ({ set, ppl: 5, nllMean: 0, tokens: 1, predicted: 1 });
    if (kind === 'reference') return (b.sets as string[]).map(one) as unknown as Results[K];
    if (kind === 'evaluate') {
      const sets = (body as RequestBodies['evaluate']).sets;
      return { perplexities: sets.map(one), mode: 'resident', setupMs: 0, mergeMs: 0, evalMs: 0, totalMs: 0 } as unknown as Results[K];
    }
    return null as Results[K];
  };
  const engine: EngineApi = {
    init: async () => ({ vendor: 'x', architecture: 'y', description: '', features: [], maxBufferSize: 1, maxStorageBufferBindingSize: 1 }),
    inspect: async () => ({}) as CheckpointSummary,
    onDeviceLost: () => () => {},
    onCrash: () => () => {},
    restart: () => {},
    dispose: () => {},
    call,
  };
  return { engine, loaded };
}

const folder = (n: number): FileEntry[] => [
  { path: 'config.json', file: new File(['{"model_type":"gpt2"}'], 'config.json') },
  { path: 'model.safetensors', file: new File([new Uint8Array(n).fill(3)], 'model.safetensors') },
];

const until = async (cond: () => boolean | Promise<boolean>, what: string): Promise<void> => {
  for (let i = 0; i < 400; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
};

function open(mem: MemoryStore) {
  const { engine, loaded } = fakeEngine();
  const store = createStudioStore({ engine, local: Promise.resolve(mem as unknown as LocalStore) });
  return { store, loaded };
}

const settled = (s: ReturnType<typeof open>) => until(() => !s.store.getState().storageSaving && Object.keys(s.store.getState().storageCopying).length === 0, 'storage to settle');

describe('OPFS persistence of the workspace', () => {
  it('copies checkpoints and texts in, restores them from the store (not the picked Files), and lists what is missing', async () => {
    const mem = new MemoryStore();
    const a = open(mem);
    await a.store.restored;
    const picked = folder(1000);
    const id = await a.store.getState().addCheckpoint('base', picked);
    const ft = await a.store.getState().addCheckpoint('ft', folder(500));
    await a.store.getState().addValidationText('prose', 'some words here');
    await until(() => mem.files.has(`checkpoints/${ft}/model.safetensors`) && mem.files.has(WORKSPACE_FILE), 'copies');
    await settled(a);
    // The card now refers to the stored copy.
    const entry = a.store.getState().checkpoints.find((c) => c.id === id)!;
    expect(entry.files[1]!.file).toBe(mem.files.get(`checkpoints/${id}/model.safetensors`));
    expect(a.store.getState().storedItems.map((i) => [i.kind, i.name, i.size])).toEqual(
      expect.arrayContaining([
        ['checkpoint', 'base', 1000 + 21],
        ['checkpoint', 'ft', 500 + 21],
        ['text', 'prose', 15],
      ]),
    );
    const json = await mem.files.get(WORKSPACE_FILE)!.text();
    expect(json).not.toContain('some words here');

    // Restart: everything comes back from the store.
    const b = open(mem);
    await b.store.restored;
    expect(b.store.getState().checkpoints.map((c) => [c.name, c.status])).toEqual([
      ['base', 'ready'],
      ['ft', 'ready'],
    ]);
    expect(b.loaded.get(id)![1]!.file).toBe(mem.files.get(`checkpoints/${id}/model.safetensors`));
    expect(b.store.getState().validationSets.map((v) => [v.name, v.text])).toEqual([['prose', 'some words here']]);

    // A stored file vanished: the card asks for re-selection and the panel lists it.
    mem.files.delete(`checkpoints/${ft}/model.safetensors`);
    const c = open(mem);
    await c.store.restored;
    const ftEntry = c.store.getState().checkpoints.find((x) => x.id === ft)!;
    expect([ftEntry.status, ftEntry.needsReselect]).toEqual(['failed', true]);
    expect(c.store.getState().storageMissing).toEqual([{ kind: 'checkpoint', id: ft, name: 'ft', files: ['model.safetensors'] }]);
  });

  it('a checkpoint that does not fit is reported, stays usable from memory, and leaves stored items whole', async () => {
    const mem = new MemoryStore(3000);
    const s = open(mem);
    await s.store.restored;
    const base = await s.store.getState().addCheckpoint('base', folder(1000));
    await until(() => mem.files.has(`checkpoints/${base}/model.safetensors`), 'base copy');
    const pickedBig = folder(5000);
    const big = await s.store.getState().addCheckpoint('big', pickedBig);
    await until(() => !!s.store.getState().storageNotStored[big], 'the full-storage report');
    await settled(s);
    const entry = s.store.getState().checkpoints.find((c) => c.id === big)!;
    expect(entry.status).toBe('ready');
    expect(entry.files).toBe(pickedBig);
    expect(s.store.getState().notifications.at(-1)?.message).toContain('not enough browser storage');
    expect([...mem.files.keys()].filter((k) => k.includes(big))).toEqual([]);
    expect(mem.files.get(`checkpoints/${base}/model.safetensors`)!.size).toBe(1000);
  });

  it('removing a card deletes its stored copy; clearAll empties workspace and storage', async () => {
    const mem = new MemoryStore();
    const s = open(mem);
    await s.store.restored;
    const a = await s.store.getState().addCheckpoint('a', folder(10));
    const b = await s.store.getState().addCheckpoint('b', folder(10));
    await s.store.getState().addValidationText('t', 'x y z');
    await until(() => mem.files.has(`checkpoints/${b}/model.safetensors`), 'copies');
    await settled(s);
    s.store.getState().removeCheckpoint(a);
    await until(() => ![...mem.files.keys()].some((k) => k.includes(a)), 'removal');
    await s.store.getState().clearStorage();
    await settled(s);
    expect(s.store.getState().checkpoints).toEqual([]);
    expect(s.store.getState().validationSets).toEqual([]);
    expect([...mem.files.keys()].filter((k) => k !== WORKSPACE_FILE)).toEqual([]);
  });

  it('the storage slice says whether anything is kept: OPFS open, OPFS that failed to open, no OPFS', async () => {
    const kept = open(new MemoryStore());
    expect(kept.store.getState().storageEnabled).toBe(true);
    const failed = createStudioStore({ engine: fakeEngine().engine, local: Promise.resolve(null) });
    await failed.restored;
    expect(failed.getState().storageEnabled).toBe(false);
    const none = createStudioStore({ engine: fakeEngine().engine });
    expect(none.getState().storageEnabled).toBe(false);
    await none.getState().clearStorage();
    expect(none.getState().storedItems).toEqual([]);
  });
});

/** A File System Access handle over a File, with a permission state the test sets. */
class FakeHandle {
  readonly kind = 'file';
  permission: PermissionState;
  requested = 0;
  constructor(
    readonly name: string,
    private readonly file: File,
    permission: PermissionState = 'granted',
  ) {
    this.permission = permission;
  }
  async getFile(): Promise<File> {
    if (this.permission !== 'granted') throw new DOMException('no permission', 'NotAllowedError');
    return this.file;
  }
  async queryPermission(): Promise<PermissionState> {
    return this.permission;
  }
  async requestPermission(): Promise<PermissionState> {
    this.requested++;
    this.permission = 'granted';
    return this.permission;
  }
}

function memoryHandles(): HandleStore & { map: Map<string, FileHandles> } {
  const map = new Map<string, FileHandles>();
  return {
    map,
    put: async (id, h) => void map.set(id, h),
    get: async (id) => map.get(id),
    remove: async (id) => void map.delete(id),
    clear: async () => map.clear(),
  };
}

describe('checkpoints opened in place (File System Access handles)', () => {
  const inPlace = (n: number): { files: FileEntry[]; handles: FakeHandle[] } => {
    const files = folder(n);
    const handles = files.map((f) => new FakeHandle(f.file.name, f.file));
    return { files: files.map((f, i) => ({ ...f, handle: handles[i] as unknown as FileSystemFileHandle })), handles };
  };
  const openWith = (mem: MemoryStore, handles: HandleStore) => {
    const { engine, loaded } = fakeEngine();
    const store = createStudioStore({ engine, local: Promise.resolve(mem as unknown as LocalStore), handles: Promise.resolve(handles), inPlaceBytes: 2000 });
    return { store, loaded };
  };

  it('a large checkpoint with handles is not copied: its handles are kept, and it comes back from them; a small one is copied', async () => {
    const mem = new MemoryStore();
    const handles = memoryHandles();
    const a = openWith(mem, handles);
    await a.store.restored;
    const big = inPlace(5000);
    const id = await a.store.getState().addCheckpoint('big', big.files);
    const small = await a.store.getState().addCheckpoint('small', inPlace(100).files);
    await until(() => mem.files.has(`checkpoints/${small}/model.safetensors`) && mem.files.has(WORKSPACE_FILE), 'the small copy and the workspace');
    await settled(a);
    expect([...mem.files.keys()].filter((k) => k.includes(id))).toEqual([]);
    expect(a.store.getState().storageInPlace).toEqual({ [id]: 'big' });
    expect(Object.keys(handles.map.get(id)!)).toEqual(['config.json', 'model.safetensors']);
    expect(await mem.files.get(WORKSPACE_FILE)!.text()).toContain('"inPlace":true');

    // Restart with the permission still granted: read straight through the handles.
    const b = openWith(mem, handles);
    await b.store.restored;
    expect(b.store.getState().checkpoints.find((c) => c.id === id)!.status).toBe('ready');
    expect(b.loaded.get(id)![1]!.file.size).toBe(5000);
    expect(b.store.getState().storageMissing).toEqual([]);

    // Restart where the browser wants the user's permission again: listed, then granted and loaded.
    for (const h of big.handles) h.permission = 'prompt';
    const c = openWith(mem, handles);
    await c.store.restored;
    expect(c.store.getState().checkpoints.find((x) => x.id === id)!.status).toBe('failed');
    expect(c.store.getState().storageMissing).toEqual([{ kind: 'checkpoint', id, name: 'big', files: ['config.json', 'model.safetensors'], permission: true }]);
    await c.store.getState().grantAccess(id);
    expect(big.handles.map((h) => h.requested)).toEqual([1, 1]);
    expect(c.store.getState().checkpoints.find((x) => x.id === id)!.status).toBe('ready');
    expect(c.loaded.get(id)![1]!.file.size).toBe(5000);
    expect(c.store.getState().storageMissing).toEqual([]);

    // Removing the card forgets its handles.
    c.store.getState().removeCheckpoint(id);
    await until(() => !handles.map.has(id), 'the handles to go');
    expect(c.store.getState().storageInPlace).toEqual({});
  });
});

describe('workspace.json: a backup generation, recovery instead of an empty workspace, coalesced writes', () => {
  /** A workspace with a base, a fine-tune and a text, saved; returns the ids. */
  async function saved(mem: MemoryStore): Promise<{ base: string; ft: string }> {
    const s = open(mem);
    await s.store.restored;
    const base = await s.store.getState().addCheckpoint('base', folder(100));
    const ft = await s.store.getState().addCheckpoint('ft', folder(50));
    await s.store.getState().addValidationText('prose', 'some words here');
    await until(() => mem.files.has(`checkpoints/${ft}/model.safetensors`) && mem.files.has(WORKSPACE_FILE), 'copies');
    await settled(s);
    s.store.setState({ objectiveWeights: { x: 2 } });
    await until(() => mem.files.has(WORKSPACE_BACKUP), 'a second save');
    await settled(s);
    return { base, ft };
  }

  it('each save keeps the generation it replaces as workspace.backup.json', async () => {
    const mem = new MemoryStore();
    await saved(mem);
    const current = JSON.parse(await mem.files.get(WORKSPACE_FILE)!.text()) as { state: { objectiveWeights: unknown } };
    const backup = JSON.parse(await mem.files.get(WORKSPACE_BACKUP)!.text()) as { state: { objectiveWeights: unknown } };
    expect(current.state.objectiveWeights).toEqual({ x: 2 });
    expect(backup.state.objectiveWeights).not.toEqual({ x: 2 });
    // The backup is written before the file it backs up is replaced.
    expect(mem.puts.lastIndexOf(WORKSPACE_BACKUP)).toBeLessThan(mem.puts.lastIndexOf(WORKSPACE_FILE));
  });

  it('a corrupt workspace.json: the backup generation is restored and the user is told', async () => {
    const mem = new MemoryStore();
    await saved(mem);
    mem.files.set(WORKSPACE_FILE, new File(['{"version":1,"state":{"checkpoints":[{"id":'], WORKSPACE_FILE));
    const s = open(mem);
    await s.store.restored;
    expect(s.store.getState().checkpoints.map((c) => [c.name, c.role, c.status])).toEqual([
      ['base', 'base', 'ready'],
      ['ft', 'finetune', 'ready'],
    ]);
    expect(s.store.getState().validationSets.map((v) => v.name)).toEqual(['prose']);
    expect(s.store.getState().notifications.at(-1)?.message).toMatch(/workspace\.json could not be used \(it is unreadable \(not valid JSON.*the previous saved version was restored/);
  });

  it('workspace.json and its backup both unusable (or missing): the stored checkpoints and texts are recovered, not orphaned', async () => {
    for (const damage of ['corrupt', 'missing'] as const) {
      const mem = new MemoryStore();
      const { base, ft } = await saved(mem);
      mem.files.set(`checkpoints/${ft}/config.json`, new File(['{"model_type":"gpt2","_name_or_path":"org/my-finetune"}'], 'config.json'));
      if (damage === 'corrupt') {
        mem.files.set(WORKSPACE_FILE, new File(['{"state": {"checkpoints": "oops"}}'], WORKSPACE_FILE));
        mem.files.set(WORKSPACE_BACKUP, new File(['not json'], WORKSPACE_BACKUP));
      } else {
        mem.files.delete(WORKSPACE_FILE);
        mem.files.delete(WORKSPACE_BACKUP);
      }
      const s = open(mem);
      await s.store.restored;
      const cards = s.store.getState().checkpoints;
      expect(cards.map((c) => c.id).sort(), damage).toEqual([base, ft].sort());
      expect(cards.find((c) => c.id === ft)!.name).toBe('my-finetune');
      expect(cards.every((c) => c.status === 'ready')).toBe(true);
      expect(cards.filter((c) => c.role === 'base')).toHaveLength(1);
      expect(s.store.getState().validationSets.map((v) => v.text)).toEqual(['some words here']);
      expect(s.store.getState().notifications.at(-1)?.message).toMatch(/2 stored checkpoints and 1 text were recovered from browser storage/);
      // Nothing stored was deleted.
      expect(mem.files.has(`checkpoints/${base}/model.safetensors`)).toBe(true);
    }
  });

  it('a first visit (nothing stored) starts empty without a report', async () => {
    const s = open(new MemoryStore());
    await s.store.restored;
    expect(s.store.getState().notifications).toEqual([]);
  });

  it('rapid changes (a slider drag) are coalesced: a handful of writes, and at least one per SAVE_MAX_WAIT_MS while they go on', async () => {
    const mem = new MemoryStore();
    const s = open(mem);
    await s.store.restored;
    await s.store.getState().addValidationText('prose', 'some words here');
    await settled(s);
    const before = mem.puts.filter((p) => p === WORKSPACE_FILE).length;
    const started = Date.now();
    let i = 0;
    // 60 changes a second for SAVE_MAX_WAIT_MS + 1 s.
    while (Date.now() - started < SAVE_MAX_WAIT_MS + 1000) {
      s.store.setState({ objectiveWeights: { prose: ++i } });
      await new Promise((r) => setTimeout(r, 16));
    }
    const during = mem.puts.filter((p) => p === WORKSPACE_FILE).length - before;
    await settled(s);
    const after = mem.puts.filter((p) => p === WORKSPACE_FILE).length - before;
    expect(i).toBeGreaterThan(100);
    expect(during).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThanOrEqual(4);
    const last = JSON.parse(await mem.files.get(WORKSPACE_FILE)!.text()) as { state: { objectiveWeights: Record<string, number> } };
    expect(last.state.objectiveWeights.prose).toBe(i);
  });
});
