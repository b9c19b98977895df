import type { PersistStorage, StorageValue } from 'zustand/middleware';
import { createStore, type StoreApi } from 'zustand/vanilla';
import { StorageFullError } from '../engine/index.ts';
import type { LocalStore, StorageUsage } from '../storage/local.ts';
import type { FileEntry } from '../worker/protocol.ts';
import { indexedDbStorage, PERSIST_KEY } from './persist.ts';
import type { PersistedWorkspace, StudioState } from './types.ts';

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
    checkpoints: { id: string; name: string; role: 'base' | 'finetune'; files: { path: string; size: number }[] }[];
    validationSets: { id: string; name: string }[];
  };
}

export interface StoredItem {
  kind: 'checkpoint' | 'text';
  /** The workspace id (card or validation set). */
  id: string;
  /** Name in the workspace; null when the workspace no longer has it. */
  name: string | null;
  size: number;
  files: number;
}

export interface MissingItem {
  kind: 'checkpoint' | 'text';
  id: string;
  name: string;
  /** Stored paths that could not be read back. */
  files: string[];
}

export interface StorageState {
  available: boolean;
  usage: StorageUsage | null;
  items: StoredItem[];
  /** Copies in flight, by checkpoint id: bytes written of total. */
  copying: Record<string, { name: string; written: number; total: number }>;
  /** Checkpoints kept only in memory because they did not fit: id → message. */
  notStored: Record<string, string>;
  /** What a restore could not find in storage. */
  missing: MissingItem[];
  /** True while a workspace.json write is scheduled or running. */
  saving: boolean;
  error: string | null;
  refresh: () => Promise<void>;
  /** Removes a stored item; an item still in the workspace leaves the workspace too. */
  remove: (item: Pick<StoredItem, 'kind' | 'id'>) => Promise<void>;
  /** Empties the workspace and deletes every stored file. */
  clearAll: () => Promise<void>;
}

export type StorageStore = StoreApi<StorageState>;

/**
 * Binds LocalStore to the studio: a zustand PersistStorage for the studio store (`persist`)
 * and a small store for the Storage panel, which also keeps OPFS in step with the workspace
 * (copies new checkpoints and texts in, deletes removed ones). `studio` is attached once the
 * studio store exists (it needs `persist` first).
 */
export function createLocalPersistence(local: Promise<LocalStore | null>): {
  persist: PersistStorage<PersistedWorkspace>;
  storage: StorageStore;
  attach: (studio: StoreApi<StudioState>) => () => void;
} {
  // Files handed out by LocalStore: a card whose files are all in here needs no copy.
  const fromStore = new WeakSet<File>();
  // File lists that did not fit or failed to copy: not tried again until the user re-adds.
  const skipped = new WeakSet<FileEntry[]>();
  const copying = new Set<string>();
  const textsWritten = new Set<string>();
  let studio: StoreApi<StudioState> | null = null;
  let pending: StorageValue<PersistedWorkspace> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let chain: Promise<void> = Promise.resolve();

  const storage = createStore<StorageState>()((set, get) => ({
    available: false,
    usage: null,
    items: [],
    copying: {},
    notStored: {},
    missing: [],
    saving: false,
    error: null,

    refresh: async () => {
      const store = await local;
      if (!store) return;
      const names = new Map<string, string>();
      for (const c of studio?.getState().checkpoints ?? []) names.set(`checkpoint:${c.id}`, c.name);
      for (const v of studio?.getState().validationSets ?? []) names.set(`text:${v.id}`, v.name);
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
      set({ items: [...byKey.values()], usage });
    },

    remove: async ({ kind, id }) => {
      const s = studio?.getState();
      if (kind === 'checkpoint' && s?.checkpoints.some((c) => c.id === id)) s.removeCheckpoint(id);
      if (kind === 'text' && s?.validationSets.some((v) => v.id === id)) s.removeValidationText(id);
      const store = await local;
      await store?.remove(kind === 'checkpoint' ? checkpointDir(id) : textFile(id)).catch(() => undefined);
      if (kind === 'text') textsWritten.delete(id);
      set((st) => ({ missing: st.missing.filter((m) => m.id !== id) }));
      await get().refresh();
    },

    clearAll: async () => {
      const s = studio?.getState();
      for (const c of s?.checkpoints ?? []) s?.removeCheckpoint(c.id);
      for (const v of s?.validationSets ?? []) s?.removeValidationText(v.id);
      const store = await local;
      // Let the removals' own deletes and the workspace write settle, then empty the folder.
      await chain;
      await store?.clear();
      textsWritten.clear();
      set({ missing: [], notStored: {} });
      await get().refresh();
    },
  }));

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
        const message = error instanceof Error ? error.message : String(error);
        storage.setState({ error: `The workspace could not be saved: ${message}` });
      })
      .finally(() => {
        if (!pending && !timer) storage.setState({ saving: false });
        void storage.getState().refresh();
      });
  };

  const persist: PersistStorage<PersistedWorkspace> = {
    getItem: async () => {
      const store = await local;
      if (!store) return null;
      storage.setState({ available: true });
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
      storage.setState({ missing });
      return { version: json.version, state: { ...json.state, checkpoints, validationSets } };
    },
    setItem: (_name, value) => {
      pending = value;
      storage.setState({ saving: true });
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
    const progress = (written: number): void =>
      storage.setState((st) => ({ copying: { ...st.copying, [id]: { name, written: done + written, total } } }));
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
      studio?.setState((s) => ({ checkpoints: s.checkpoints.map((c) => (c.id === id && c.files === files ? { ...c, files: stored } : c)) }));
      if (!studio?.getState().checkpoints.some((c) => c.id === id)) await store.remove(checkpointDir(id)).catch(() => undefined);
      storage.setState((st) => {
        const notStored = { ...st.notStored };
        delete notStored[id];
        return { notStored, missing: st.missing.filter((m) => m.id !== id) };
      });
    } catch (error) {
      skipped.add(files);
      // Whatever part of this checkpoint was stored is useless alone: free it.
      await store.remove(checkpointDir(id)).catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      storage.setState((st) => ({ notStored: { ...st.notStored, [id]: message } }));
      studio?.getState().notify({
        level: 'warning',
        title: `“${name}” is not kept in browser storage`,
        message: `${error instanceof StorageFullError ? '' : 'Copying failed: '}${message} The workspace keeps using the files you chose until the page is closed.`,
        file: error instanceof StorageFullError ? error.file : undefined,
      });
    } finally {
      copying.delete(id);
      storage.setState((st) => {
        const c = { ...st.copying };
        delete c[id];
        return { copying: c };
      });
      await storage.getState().refresh();
    }
  };

  const attach = (s: StoreApi<StudioState>): (() => void) => {
    studio = s;
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
        storage.setState((x) => ({ missing: x.missing.filter((m) => now.has(m.id) && !gone.some(([g]) => g === m.id)) }));
        await storage.getState().refresh();
      });
    };
    const unsubscribe = s.subscribe(sync);
    sync(s.getState());
    void local.then((store) => {
      storage.setState({ available: !!store });
      return storage.getState().refresh();
    });
    return unsubscribe;
  };

  return { persist, storage, attach };
}
