import type { PersistStorage, StorageValue } from 'zustand/middleware';
import type { StateCreator, StoreApi } from 'zustand/vanilla';
import { StorageFullError } from '../engine/index.ts';
import type { LocalStore } from '../storage/local.ts';
import type { FileEntry } from '../worker/protocol.ts';
import { errorRecord } from './errors.ts';
import { indexedDbStorage, PERSIST_KEY } from './persist.ts';
import type { CheckpointRole, MissingItem, PersistedWorkspace, StorageSlice, StoredItem, StudioState } from './types.ts';

/**
 * Where the workspace lives between sessions: the Origin Private File System (LocalStore).
 *
 * - Each checkpoint the user adds is streamed, file by file, to `checkpoints/<id>/<path>`
 *   (File → OPFS through streams: never read whole); the card then refers to the stored lazy
 *   Files. Fine-tuned results added as checkpoints are kept the same way.
 * - Each validation text is `texts/<id>.txt`.
 * - The small workspace JSON (names, roles, sliders, search rows; no bytes) is `workspace.json`,
 *   written temp-then-rename by LocalStore like everything else.
 * On restore, checkpoints come back from OPFS; files that are gone are listed as missing and
 * their cards ask for the folder again. When the disk is full the StorageFullError message is
 * shown and the card keeps working from the in-memory File it was given.
 */
export const WORKSPACE_FILE = 'workspace.json';
export const checkpointDir = (id: string): string => `checkpoints/${id}`;
export const textFile = (id: string): string => `texts/${id}.txt`;

/** workspace.json: the persisted workspace with files as paths and texts as references. */
interface WorkspaceJson {
  version: number;
  state: Omit<PersistedWorkspace, 'checkpoints' | 'validationSets'> & {
    checkpoints: { id: string; name: string; role: CheckpointRole; files: { path: string; size: number }[] }[];
    validationSets: { id: string; name: string }[];
  };
}

const NOTHING_STORED = {
  storageUsage: null,
  storedItems: [],
  storageCopying: {},
  storageNotStored: {},
  storageMissing: [],
  storageSaving: false,
  storageError: null,
} satisfies Omit<StorageSlice, 'storageEnabled' | 'refreshStorage' | 'removeStored' | 'clearStorage'>;

/** Without OPFS (?fresh, or a browser without it) nothing is kept: the Storage panel says so. */
export const createNoStorageSlice: StateCreator<StudioState, [], [], StorageSlice> = () => ({
  storageEnabled: false,
  ...NOTHING_STORED,
  refreshStorage: async () => {},
  removeStored: async () => {},
  clearStorage: async () => {},
});

export interface OpfsStorage {
  /** zustand persist's storage: workspace.json and the texts it names. */
  persist: PersistStorage<PersistedWorkspace>;
  /** The StorageSlice over this OPFS; creating it binds `persist` and the copies to the store. */
  slice: StateCreator<StudioState, [], [], StorageSlice>;
  /** Keeps OPFS in step with the workspace (copies new checkpoints in, deletes removed ones); returns the unsubscribe. */
  watch: (studio: StoreApi<StudioState>) => () => void;
}

/**
 * LocalStore bound to the studio store: the persist storage, the storage slice and the watcher
 * share the bookkeeping below (what came from OPFS, what is being copied, what was written).
 * The slice changes the workspace only through its actions (removeCheckpoint,
 * removeValidationText, replaceCheckpointFiles).
 */
export function opfsStorage(local: Promise<LocalStore | null>): OpfsStorage {
  // Files handed out by LocalStore: a card whose files are all in here needs no copy.
  const fromStore = new WeakSet<File>();
  // File lists that did not fit or failed to copy: not tried again until the user re-adds.
  const skipped = new WeakSet<FileEntry[]>();
  const copying = new Set<string>();
  const textsWritten = new Set<string>();
  let pending: StorageValue<PersistedWorkspace> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let chain: Promise<void> = Promise.resolve();
  // The store's set/get, bound when the slice is created (zustand's persist creates the slices
  // before it first reads storage).
  let set: StoreApi<StudioState>['setState'] = () => {
    throw new Error('the storage slice is not part of a store yet');
  };
  let get: () => StudioState = () => {
    throw new Error('the storage slice is not part of a store yet');
  };

  const refreshStorage = async (): Promise<void> => {
    const store = await local;
    if (!store) return;
    const names = new Map<string, string>();
    for (const c of get().checkpoints) names.set(`checkpoint:${c.id}`, c.name);
    for (const v of get().validationSets) names.set(`text:${v.id}`, v.name);
    const files = await store.list();
    const byKey = new Map<string, StoredItem>();
    for (const f of files) {
      const ck = /^checkpoints\/([^/]+)\//.exec(f.path);
      const tx = /^texts\/([^/]+)\.txt$/.exec(f.path);
      const kind = ck ? 'checkpoint' : tx ? 'text' : null;
      const id = ck?.[1] ?? tx?.[1];
      if (!kind || !id) continue;
      // A checkpoint being copied is shown as a copy in progress, not as a stored item.
      if (kind === 'checkpoint' && copying.has(id)) continue;
      const key = `${kind}:${id}`;
      const item = byKey.get(key) ?? { kind, id, name: names.get(key) ?? null, size: 0, files: 0 };
      item.size += f.size;
      item.files += 1;
      byKey.set(key, item);
    }
    const usage = await store.usage();
    set({ storedItems: [...byKey.values()], storageUsage: usage });
  };

  const removeStored: StorageSlice['removeStored'] = async ({ kind, id }) => {
    const s = get();
    if (kind === 'checkpoint' && s.checkpoints.some((c) => c.id === id)) s.removeCheckpoint(id);
    if (kind === 'text' && s.validationSets.some((v) => v.id === id)) s.removeValidationText(id);
    const store = await local;
    await store?.remove(kind === 'checkpoint' ? checkpointDir(id) : textFile(id)).catch(() => undefined);
    if (kind === 'text') textsWritten.delete(id);
    set((st) => ({ storageMissing: st.storageMissing.filter((m) => m.id !== id) }));
    await refreshStorage();
  };

  const clearStorage = async (): Promise<void> => {
    const s = get();
    for (const c of s.checkpoints) s.removeCheckpoint(c.id);
    for (const v of s.validationSets) s.removeValidationText(v.id);
    const store = await local;
    // Let the removals' own deletes and the workspace write settle, then empty the folder.
    await chain;
    await store?.clear();
    textsWritten.clear();
    set({ storageMissing: [], storageNotStored: {} });
    await refreshStorage();
  };

  const slice: OpfsStorage['slice'] = (setState, getState) => {
    set = setState;
    get = getState;
    return { storageEnabled: true, ...NOTHING_STORED, refreshStorage, removeStored, clearStorage };
  };

  const write = async (value: StorageValue<PersistedWorkspace>): Promise<void> => {
    const store = await local;
    if (!store) return;
    const { checkpoints, validationSets, ...rest } = value.state;
    // Texts first, so workspace.json never names a text that is not stored.
    for (const v of validationSets) {
      if (textsWritten.has(v.id)) continue;
      await store.putText(textFile(v.id), v.text);
      textsWritten.add(v.id);
    }
    const json: WorkspaceJson = {
      version: value.version ?? 0,
      state: {
        ...rest,
        checkpoints: checkpoints.map((c) => ({ id: c.id, name: c.name, role: c.role, files: c.files.map((f) => ({ path: f.path, size: f.file.size })) })),
        validationSets: validationSets.map((v) => ({ id: v.id, name: v.name })),
      },
    };
    await store.putText(WORKSPACE_FILE, JSON.stringify(json));
  };

  const flush = (): void => {
    timer = undefined;
    const value = pending;
    pending = null;
    if (!value) return;
    chain = chain
      .then(() => write(value))
      .catch((error: unknown) => {
        set({ storageError: `The workspace could not be saved: ${errorRecord(error).message}` });
      })
      .finally(() => {
        if (!pending && !timer) set({ storageSaving: false });
        void refreshStorage();
      });
  };

  const persist: PersistStorage<PersistedWorkspace> = {
    getItem: async () => {
      const store = await local;
      if (!store) return null;
      const raw = await store.file(WORKSPACE_FILE).then(
        (f) => f.text(),
        () => null,
      );
      if (raw === null) {
        // A workspace saved by an earlier version (File objects in IndexedDB): load it once; its
        // checkpoints are then copied into OPFS like newly added ones.
        if (typeof indexedDB === 'undefined') return null;
        // Only when that database exists: opening it would create it.
        const dbs = await indexedDB.databases?.().catch(() => []);
        if (!dbs?.some((d) => d.name === 'dem-studio')) return null;
        return Promise.resolve(indexedDbStorage().getItem(PERSIST_KEY)).catch(() => null);
      }
      const json = JSON.parse(raw) as WorkspaceJson;
      const missing: MissingItem[] = [];
      const checkpoints: PersistedWorkspace['checkpoints'] = [];
      for (const c of json.state.checkpoints) {
        const gone: string[] = [];
        const files: FileEntry[] = [];
        for (const f of c.files) {
          const stored = await store.file(`${checkpointDir(c.id)}/${f.path}`).catch(() => null);
          if (stored && stored.size === f.size) {
            fromStore.add(stored);
            files.push({ path: f.path, file: stored });
          } else {
            gone.push(f.path);
            // An empty stand-in: loading fails and the card asks for the folder again.
            files.push({ path: f.path, file: new File([], f.path.split('/').pop() ?? f.path) });
          }
        }
        if (gone.length) missing.push({ kind: 'checkpoint', id: c.id, name: c.name, files: gone });
        checkpoints.push({ id: c.id, name: c.name, role: c.role, files });
      }
      const validationSets: PersistedWorkspace['validationSets'] = [];
      for (const v of json.state.validationSets) {
        const text = await store.file(textFile(v.id)).then(
          (f) => f.text(),
          () => null,
        );
        if (text === null) missing.push({ kind: 'text', id: v.id, name: v.name, files: [textFile(v.id)] });
        else {
          textsWritten.add(v.id);
          validationSets.push({ id: v.id, name: v.name, text });
        }
      }
      set({ storageMissing: missing });
      return { version: json.version, state: { ...json.state, checkpoints, validationSets } };
    },
    setItem: (_name, value) => {
      pending = value;
      set({ storageSaving: true });
      clearTimeout(timer);
      // Sliders set state many times a second: one write per quiet 100 ms.
      timer = setTimeout(flush, 100);
    },
    removeItem: async () => {
      await (await local)?.remove(WORKSPACE_FILE).catch(() => undefined);
    },
  };

  /** Called with `id` already in `copying` (synchronously, so one state change starts one copy). */
  const copy = async (id: string, name: string, files: FileEntry[]): Promise<void> => {
    const store = await local;
    if (!store) {
      copying.delete(id);
      return;
    }
    const total = files.reduce((s, f) => s + f.file.size, 0);
    let done = 0;
    const progress = (written: number): void => set((st) => ({ storageCopying: { ...st.storageCopying, [id]: { name, written: done + written, total } } }));
    progress(0);
    try {
      // A previous (partial or older) copy under this id goes first.
      await store.remove(checkpointDir(id)).catch(() => undefined);
      const stored: FileEntry[] = [];
      for (const f of files) {
        const path = `${checkpointDir(id)}/${f.path}`;
        await store.put(path, f.file, { onProgress: (w) => progress(w) });
        done += f.file.size;
        const file = await store.file(path);
        fromStore.add(file);
        stored.push({ path: f.path, file });
      }
      // The card now refers to the stored copy (the Worker keeps reading what it was given).
      get().replaceCheckpointFiles(id, files, stored);
      if (!get().checkpoints.some((c) => c.id === id)) await store.remove(checkpointDir(id)).catch(() => undefined);
      set((st) => {
        const notStored = { ...st.storageNotStored };
        delete notStored[id];
        return { storageNotStored: notStored, storageMissing: st.storageMissing.filter((m) => m.id !== id) };
      });
    } catch (error) {
      skipped.add(files);
      // Whatever part of this checkpoint was stored is useless alone: free it.
      await store.remove(checkpointDir(id)).catch(() => undefined);
      const { message } = errorRecord(error);
      set((st) => ({ storageNotStored: { ...st.storageNotStored, [id]: message } }));
      get().notify({
        level: 'warning',
        title: `“${name}” is not kept in browser storage`,
        message: `${error instanceof StorageFullError ? '' : 'Copying failed: '}${message} The workspace keeps using the files you chose until the page is closed.`,
        file: error instanceof StorageFullError ? error.file : undefined,
      });
    } finally {
      copying.delete(id);
      set((st) => {
        const c = { ...st.storageCopying };
        delete c[id];
        return { storageCopying: c };
      });
      await refreshStorage();
    }
  };

  const watch = (studio: StoreApi<StudioState>): (() => void) => {
    let known = new Map<string, 'checkpoint' | 'text'>();
    const sync = (st: StudioState): void => {
      for (const c of st.checkpoints) {
        if (c.status !== 'ready' || c.transient || copying.has(c.id) || skipped.has(c.files) || c.files.length === 0) continue;
        if (c.files.every((f) => fromStore.has(f.file))) continue;
        copying.add(c.id);
        void copy(c.id, c.name, c.files);
      }
      const now = new Map<string, 'checkpoint' | 'text'>([...st.checkpoints.map((c) => [c.id, 'checkpoint'] as const), ...st.validationSets.map((v) => [v.id, 'text'] as const)]);
      const gone = [...known].filter(([id]) => !now.has(id));
      known = now;
      if (gone.length === 0) return;
      void local.then(async (store) => {
        for (const [id, kind] of gone) {
          if (kind === 'text') textsWritten.delete(id);
          await store?.remove(kind === 'checkpoint' ? checkpointDir(id) : textFile(id)).catch(() => undefined);
        }
        set((x) => ({ storageMissing: x.storageMissing.filter((m) => now.has(m.id) && !gone.some(([g]) => g === m.id)) }));
        await refreshStorage();
      });
    };
    const unsubscribe = studio.subscribe(sync);
    sync(studio.getState());
    void local.then((store) => {
      // OPFS could not be opened after all: nothing is kept, and the panel says so.
      if (!store) set({ storageEnabled: false });
      return refreshStorage();
    });
    return unsubscribe;
  };

  return { persist, slice, watch };
}
