import type { PersistStorage, StorageValue } from 'zustand/middleware';
import type { StateCreator, StoreApi } from 'zustand/vanilla';
import { StorageFullError } from '../engine/index.ts';
import { readPermission, type FileHandles, type HandleStore } from '../storage/handles.ts';
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
 *   written temp-then-swap by LocalStore like everything else; the generation it replaces is kept
 *   as `workspace.backup.json`. Writes are coalesced: one after SAVE_QUIET_MS without changes, at
 *   least one per SAVE_MAX_WAIT_MS while something keeps changing (a slider drag), and at once
 *   when the page is hidden.
 * - A checkpoint opened through the File System Access API (its files carry handles) and at
 *   least IN_PLACE_BYTES large is opened in place instead: its handles are kept (HandleStore,
 *   IndexedDB) and it is read lazily through them, never copied — a multi-GB checkpoint costs no
 *   second copy on disk. After a restart the browser asks again for permission to read them.
 * On restore, checkpoints come back from OPFS (or their handles); files that are gone are listed
 * as missing and their cards ask for the folder again. A workspace.json that is missing or
 * unreadable is reported, never silently replaced by an empty workspace: the backup generation
 * is used, else the stored checkpoints and texts are recovered from their folders (names from
 * config.json, roles to be checked; checkpoints opened in place are not among them). When the
 * disk is full the StorageFullError message is shown and the card keeps working from the
 * in-memory File it was given.
 */
export const WORKSPACE_FILE = 'workspace.json';
export const WORKSPACE_BACKUP = 'workspace.backup.json';
export const SAVE_QUIET_MS = 500;
export const SAVE_MAX_WAIT_MS = 3000;

/** Checkpoints with file handles from this size up are opened in place rather than copied. */
export const IN_PLACE_BYTES = 1024 ** 3;
export const checkpointDir = (id: string): string => `checkpoints/${id}`;
export const textFile = (id: string): string => `texts/${id}.txt`;

/** workspace.json: the persisted workspace with files as paths and texts as references. */
interface WorkspaceJson {
  version: number;
  state: Omit<PersistedWorkspace, 'checkpoints' | 'validationSets'> & {
    checkpoints: { id: string; name: string; role: CheckpointRole; files: { path: string; size: number }[]; inPlace?: boolean }[];
    validationSets: { id: string; name: string }[];
  };
}

/** The workspace.json object, or what is wrong with the text (shape checked, not just the syntax). */
function parseWorkspaceJson(raw: string): WorkspaceJson | string {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    return `not valid JSON: ${error instanceof Error ? error.message : String(error)}`.slice(0, 200);
  }
  const state = typeof json === 'object' && json !== null ? (json as { state?: unknown }).state : undefined;
  if (typeof state !== 'object' || state === null) return 'no workspace state in it';
  const { checkpoints, validationSets } = state as { checkpoints?: unknown; validationSets?: unknown };
  const str = (v: unknown): boolean => typeof v === 'string';
  const goodCheckpoint = (c: unknown): boolean => {
    const x = c as { id?: unknown; name?: unknown; role?: unknown; files?: unknown };
    return typeof c === 'object' && c !== null && str(x.id) && str(x.name) && (x.role === 'base' || x.role === 'finetune') &&
      Array.isArray(x.files) && x.files.every((f: { path?: unknown; size?: unknown }) => typeof f === 'object' && f !== null && str(f.path) && typeof f.size === 'number');
  };
  if (!Array.isArray(checkpoints) || !checkpoints.every(goodCheckpoint)) return 'its checkpoint list is damaged';
  if (!Array.isArray(validationSets) || !validationSets.every((v: { id?: unknown; name?: unknown }) => typeof v === 'object' && v !== null && str(v.id) && str(v.name))) {
    return 'its text list is damaged';
  }
  return json as WorkspaceJson;
}

/** A workspace rebuilt from what is stored (checkpoints/<id>/…, texts/<id>.txt) when workspace.json cannot be used. */
async function recoverFromFiles(store: LocalStore): Promise<{ json: WorkspaceJson; checkpoints: number; texts: number } | undefined> {
  const files = await store.list().catch(() => []);
  const folders = new Map<string, { path: string; size: number }[]>();
  const texts: { id: string; name: string }[] = [];
  for (const f of files) {
    const ck = /^checkpoints\/([^/]+)\/(.+)$/.exec(f.path);
    const tx = /^texts\/([^/]+)\.txt$/.exec(f.path);
    if (ck) folders.set(ck[1]!, [...(folders.get(ck[1]!) ?? []), { path: ck[2]!, size: f.size }]);
    else if (tx) texts.push({ id: tx[1]!, name: tx[1]! });
  }
  if (folders.size === 0 && texts.length === 0) return undefined;
  const checkpoints: WorkspaceJson['state']['checkpoints'] = [];
  for (const [id, list] of folders) {
    // The card's name was in workspace.json; config.json's _name_or_path is the next best.
    const config = await store.file(`${checkpointDir(id)}/config.json`).then((f) => f.text(), () => '');
    let name = id;
    try {
      const path = (JSON.parse(config) as { _name_or_path?: unknown })._name_or_path;
      if (typeof path === 'string' && path.trim()) name = path.split('/').filter(Boolean).pop() ?? id;
    } catch {
      // no usable config.json: the id stays the name
    }
    checkpoints.push({ id, name, role: checkpoints.length === 0 ? 'base' : 'finetune', files: list });
  }
  const state = { checkpoints, validationSets: texts } as WorkspaceJson['state'];
  return { json: { version: 1, state }, checkpoints: checkpoints.length, texts: texts.length };
}

/**
 * A workspace saved by an earlier version (File objects in IndexedDB), loaded once; its
 * checkpoints are then copied into OPFS like newly added ones. Only when that database exists:
 * opening it would create it.
 */
async function legacyWorkspace(): Promise<StorageValue<PersistedWorkspace> | null> {
  if (typeof indexedDB === 'undefined') return null;
  const dbs = await indexedDB.databases?.().catch(() => []);
  if (!dbs?.some((d) => d.name === 'dem-studio')) return null;
  return Promise.resolve(indexedDbStorage().getItem(PERSIST_KEY)).catch(() => null);
}

const NOTHING_STORED = {
  storageUsage: null,
  storedItems: [],
  storageCopying: {},
  storageNotStored: {},
  storageMissing: [],
  storageInPlace: {},
  storageSaving: false,
  storageError: null,
} satisfies Omit<StorageSlice, 'storageEnabled' | 'refreshStorage' | 'removeStored' | 'clearStorage' | 'grantAccess'>;

/** Without OPFS (?fresh, or a browser without it) nothing is kept: the Storage panel says so. */
export const createNoStorageSlice: StateCreator<StudioState, [], [], StorageSlice> = () => ({
  storageEnabled: false,
  ...NOTHING_STORED,
  refreshStorage: async () => {},
  removeStored: async () => {},
  clearStorage: async () => {},
  grantAccess: async () => {},
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
export function opfsStorage(local: Promise<LocalStore | null>, options: { handles?: Promise<HandleStore | null>; inPlaceBytes?: number } = {}): OpfsStorage {
  const handleStore = options.handles ?? Promise.resolve(null);
  const inPlaceBytes = options.inPlaceBytes ?? IN_PLACE_BYTES;
  // Checkpoints opened in place (their handles kept, nothing copied), and handle writes in flight.
  const inPlace = new Set<string>();
  const restoredHandles = new Map<string, FileHandles>();
  let handlesWritten: Promise<void> = Promise.resolve();
  // Files handed out by LocalStore: a card whose files are all in here needs no copy.
  const fromStore = new WeakSet<File>();
  // File lists that did not fit or failed to copy: not tried again until the user re-adds.
  const skipped = new WeakSet<FileEntry[]>();
  const copying = new Set<string>();
  const textsWritten = new Set<string>();
  let pending: StorageValue<PersistedWorkspace> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // When the oldest unsaved change was made (SAVE_MAX_WAIT_MS counts from it).
  let pendingSince: number | undefined;
  let chain: Promise<void> = Promise.resolve();
  // workspace.json's text as last read or written: what becomes the backup when it is replaced.
  let onDisk: string | null = null;
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
    if (kind === 'checkpoint') await forgetInPlace(id);
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
    await (await handleStore)?.clear().catch(() => undefined);
    inPlace.clear();
    restoredHandles.clear();
    textsWritten.clear();
    // Nothing is left to back up: the next workspace.json starts a new history.
    onDisk = null;
    set({ storageMissing: [], storageNotStored: {}, storageInPlace: {} });
    await refreshStorage();
  };

  const forgetInPlace = async (id: string): Promise<void> => {
    if (!inPlace.delete(id)) return;
    restoredHandles.delete(id);
    await (await handleStore)?.remove(id).catch(() => undefined);
    set((st) => {
      const rest = { ...st.storageInPlace };
      delete rest[id];
      return { storageInPlace: rest };
    });
  };

  /** Keeps a checkpoint's file handles instead of copying it (called with `id` already in `inPlace`). */
  const keepInPlace = (id: string, name: string, files: FileEntry[]): void => {
    set((st) => ({ storageInPlace: { ...st.storageInPlace, [id]: name } }));
    const handles = Object.fromEntries(files.map((f) => [f.path, f.handle!]));
    handlesWritten = handlesWritten.then(async () => {
      try {
        await (await handleStore)?.put(id, handles);
      } catch (error) {
        set({ storageError: `“${name}” is opened in place but its file handles could not be kept: ${errorRecord(error).message}` });
      }
    });
  };

  const grantAccess: StorageSlice['grantAccess'] = async (id) => {
    const handles = restoredHandles.get(id) ?? (await (await handleStore)?.get(id));
    const card = get().checkpoints.find((c) => c.id === id);
    if (!handles || !card) return;
    const entries = Object.entries(handles);
    for (const [, h] of entries) {
      if ((await readPermission(h, true)) !== 'granted') {
        get().notify({ level: 'warning', title: `No access to “${card.name}”`, message: 'The browser did not allow reading its files; choose the folder again.' });
        return;
      }
    }
    const files: FileEntry[] = await Promise.all(entries.map(async ([path, handle]) => ({ path, file: await handle.getFile(), handle })));
    restoredHandles.delete(id);
    set((st) => ({ storageMissing: st.storageMissing.filter((m) => m.id !== id) }));
    await get().addCheckpoint(card.name, files, { id, role: card.role });
  };

  const slice: OpfsStorage['slice'] = (setState, getState) => {
    set = setState;
    get = getState;
    return { storageEnabled: true, ...NOTHING_STORED, refreshStorage, removeStored, clearStorage, grantAccess };
  };

  const write = async (value: StorageValue<PersistedWorkspace>): Promise<void> => {
    const store = await local;
    if (!store) return;
    // Handles first, so workspace.json never names an in-place checkpoint whose handles are not kept.
    await handlesWritten;
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
        checkpoints: checkpoints.map((c) => ({
          id: c.id,
          name: c.name,
          role: c.role,
          files: c.files.map((f) => ({ path: f.path, size: f.file.size })),
          ...(inPlace.has(c.id) ? { inPlace: true } : {}),
        })),
        validationSets: validationSets.map((v) => ({ id: v.id, name: v.name })),
      },
    };
    const text = JSON.stringify(json);
    if (text === onDisk) return;
    // The generation being replaced becomes the backup first.
    if (onDisk !== null) await store.putText(WORKSPACE_BACKUP, onDisk);
    await store.putText(WORKSPACE_FILE, text);
    onDisk = text;
  };

  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    pendingSince = undefined;
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

  /**
   * A checkpoint opened in place, from its kept handles: readable now (permission still
   * granted), or placeholders and a missing item that asks for permission (or the folder) again.
   */
  const restoreInPlace = async (c: WorkspaceJson['state']['checkpoints'][number]): Promise<{ files: FileEntry[]; missing?: MissingItem }> => {
    inPlace.add(c.id);
    set((st) => ({ storageInPlace: { ...st.storageInPlace, [c.id]: c.name } }));
    const handles = await (await handleStore)?.get(c.id).catch(() => undefined);
    const files: FileEntry[] = [];
    const gone: string[] = [];
    let ask = false;
    for (const f of c.files) {
      const handle = handles?.[f.path];
      const state = handle ? await readPermission(handle, false).catch(() => 'denied' as const) : 'denied';
      const file = handle && state === 'granted' ? await handle.getFile().catch(() => null) : null;
      if (file && file.size === f.size) {
        files.push({ path: f.path, file, handle });
        continue;
      }
      if (handle && state !== 'granted') ask = true;
      gone.push(f.path);
      // An empty stand-in: loading fails and the card asks for permission or the folder again.
      files.push({ path: f.path, file: new File([], f.path.split('/').pop() ?? f.path), handle });
    }
    if (gone.length === 0) return { files };
    if (handles) restoredHandles.set(c.id, handles);
    return { files, missing: { kind: 'checkpoint', id: c.id, name: c.name, files: gone, ...(ask ? { permission: true } : {}) } };
  };

  const report = (message: string): void => {
    get().notify({ level: 'warning', title: 'Your saved workspace could not be read as it was', message });
  };

  // Saves what is pending as soon as the page is hidden (a tab closed or switched away).
  if (typeof document !== 'undefined') {
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden' && pending) flush();
    });
  }

  const persist: PersistStorage<PersistedWorkspace> = {
    getItem: async () => {
      const store = await local;
      if (!store) return null;
      const read = (path: string): Promise<string | null> => store.file(path).then((f) => f.text(), () => null);
      const raw = await read(WORKSPACE_FILE);
      let json = raw === null ? undefined : parseWorkspaceJson(raw);
      if (json && typeof json !== 'string') onDisk = raw;
      else {
        const problem = raw === null ? 'it is missing' : `it is unreadable (${typeof json === 'string' ? json : 'empty'})`;
        const backupRaw = await read(WORKSPACE_BACKUP);
        const backup = backupRaw === null ? undefined : parseWorkspaceJson(backupRaw);
        if (backup && typeof backup !== 'string') {
          json = backup;
          onDisk = backupRaw;
          report(`workspace.json could not be used (${problem}); the previous saved version was restored, so the latest changes may be missing.`);
        } else {
          if (raw === null) {
            const legacy = await legacyWorkspace();
            if (legacy) return legacy;
          }
          const recovered = await recoverFromFiles(store);
          if (!recovered) {
            if (raw !== null) report(`workspace.json could not be used (${problem}) and nothing else was stored: the studio starts with an empty workspace.`);
            return null;
          }
          json = recovered.json;
          report(
            `workspace.json could not be used (${problem}). ${recovered.checkpoints} stored checkpoint${recovered.checkpoints === 1 ? '' : 's'} and ${recovered.texts} text${recovered.texts === 1 ? '' : 's'} ` +
              'were recovered from browser storage; coefficients and search results were lost, and which checkpoint is the base should be checked.',
          );
        }
      }
      const missing: MissingItem[] = [];
      const checkpoints: PersistedWorkspace['checkpoints'] = [];
      for (const c of json.state.checkpoints) {
        if (c.inPlace) {
          const restored = await restoreInPlace(c);
          if (restored.missing) missing.push(restored.missing);
          checkpoints.push({ id: c.id, name: c.name, role: c.role, files: restored.files });
          continue;
        }
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
        const text = await read(textFile(v.id));
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
      // Sliders set state many times a second: write after a quiet moment, and during a long
      // drag at least every SAVE_MAX_WAIT_MS.
      const now = Date.now();
      pendingSince ??= now;
      timer = setTimeout(flush, Math.max(0, Math.min(SAVE_QUIET_MS, pendingSince + SAVE_MAX_WAIT_MS - now)));
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
        if (inPlace.has(c.id)) continue;
        if (c.files.every((f) => fromStore.has(f.file))) continue;
        // Opened through the File System Access API and large: keep the handles, read it in place.
        if (c.files.every((f) => f.handle) && c.files.reduce((s, f) => s + f.file.size, 0) >= inPlaceBytes) {
          inPlace.add(c.id);
          keepInPlace(c.id, c.name, c.files);
          continue;
        }
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
          if (kind === 'checkpoint') await forgetInPlace(id);
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
