import type { PersistOptions, PersistStorage, StorageValue } from 'zustand/middleware';
import type { PersistedWorkspace, StudioState } from './types.ts';

/**
 * The workspace survives a reload through zustand's persist middleware over IndexedDB. IndexedDB
 * stores structured clones, so the picked File objects are kept as they are (Chromium keeps a
 * snapshot reference); a file that changed or vanished fails to read on restore and its card asks
 * for the folder again. Derived state (summaries, perplexities) is recomputed, not stored.
 */
export const PERSIST_KEY = 'dem-studio-workspace';

/** The state fields `partialize` reads: when none changed, neither did what is persisted. */
const PERSISTED_FIELDS = [
  'checkpoints',
  'validationSets',
  'method',
  'params',
  'coefficients',
  'objectiveWeights',
  'searchRows',
  'searchKind',
  'searchCoefIds',
  'searchTarget',
  'taskFiles',
  'trainedTokens',
] as const satisfies readonly (keyof StudioState)[];

export function partialize(s: StudioState): PersistedWorkspace {
  return {
    checkpoints: s.checkpoints.filter((c) => c.files.length > 0 && !c.transient).map(({ id, name, role, files }) => ({ id, name, role, files })),
    validationSets: s.validationSets.map(({ id, name, text }) => ({ id, name, text })),
    method: s.method,
    params: s.params,
    coefficients: s.coefficients,
    objectiveWeights: s.objectiveWeights,
    searchRows: s.searchRows,
    searchKind: s.searchKind,
    searchCoefIds: s.searchCoefIds,
    searchTarget: s.searchTarget,
    taskFiles: s.taskFiles.map(({ id, setId, name, text }) => ({ id, setId, name, text })),
    trainedTokens: s.trainedTokens,
  };
}

/** Plain fields are merged at once; checkpoints and texts are re-added (re-opened, re-tokenized) after hydration. */
export function mergePersisted(persisted: unknown, current: StudioState): StudioState {
  const p = (persisted ?? {}) as Partial<PersistedWorkspace>;
  const methodKnown = current.methods.some((m) => m.name === p.method);
  return {
    ...current,
    method: methodKnown ? p.method! : current.method,
    params: p.params ?? current.params,
    coefficients: p.coefficients ?? current.coefficients,
    objectiveWeights: p.objectiveWeights ?? current.objectiveWeights,
    searchRows: p.searchRows ?? [],
    searchKind: p.searchKind ?? null,
    searchCoefIds: p.searchCoefIds ?? [],
    searchTarget: p.searchTarget ?? current.searchTarget,
    trainedTokens: p.trainedTokens ?? current.trainedTokens,
  };
}

export async function restoreWorkspace(persisted: Partial<PersistedWorkspace> | undefined, state: () => StudioState): Promise<void> {
  if (!persisted) return;
  const base = persisted.checkpoints?.find((c) => c.role === 'base');
  // The base first, so the texts tokenize with its tokenizer once.
  const ordered = [...(persisted.checkpoints ?? [])].sort((a, b) => Number(b === base) - Number(a === base));
  await Promise.all(ordered.map((c) => state().addCheckpoint(c.name, c.files, { id: c.id, role: c.role })));
  for (const v of persisted.validationSets ?? []) await state().addValidationText(v.name, v.text, v.id);
  for (const t of persisted.taskFiles ?? []) if (state().validationSets.some((v) => v.id === t.setId)) await state().addTaskFile(t.setId, t.name, t.text, t.id);
}

/**
 * zustand's persist writes after every state change; here only what changes the persisted
 * workspace is written (one store holds training progress, storage progress and the like too),
 * and nothing before the stored workspace has been read back: an earlier write would replace it
 * with the empty initial one.
 */
export function persistOptions(storage: PersistStorage<PersistedWorkspace>, onRestored: (p: Partial<PersistedWorkspace> | undefined) => void): PersistOptions<StudioState, PersistedWorkspace> {
  let restoring: Partial<PersistedWorkspace> | undefined;
  let hydrated = false;
  let lastSource: StudioState | undefined;
  let lastValue: PersistedWorkspace | undefined;
  let lastWritten: PersistedWorkspace | undefined;
  return {
    name: PERSIST_KEY,
    version: 1,
    storage: {
      getItem: (name) => storage.getItem(name),
      setItem: (name, value) => {
        if (!hydrated || value.state === lastWritten) return;
        lastWritten = value.state;
        return storage.setItem(name, value);
      },
      removeItem: (name) => storage.removeItem(name),
    },
    partialize: (s) => {
      const last = lastSource;
      if (last && lastValue && PERSISTED_FIELDS.every((k) => s[k] === last[k])) return lastValue;
      lastSource = s;
      lastValue = partialize(s);
      return lastValue;
    },
    merge: (persisted, current) => {
      restoring = persisted as Partial<PersistedWorkspace> | undefined;
      return mergePersisted(persisted, current);
    },
    onRehydrateStorage: () => () => {
      hydrated = true;
      onRestored(restoring);
    },
  };
}

/** IndexedDB as a structured-clone PersistStorage (no JSON: Files survive). */
export function indexedDbStorage(dbName = 'dem-studio'): PersistStorage<PersistedWorkspace> {
  const open = (): Promise<IDBDatabase> =>
    new Promise((resolve, reject) => {
      const req = indexedDB.open(dbName, 1);
      req.onupgradeneeded = () => req.result.createObjectStore('kv');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  let db: Promise<IDBDatabase> | undefined;
  const tx = async <T>(mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> => {
    db ??= open();
    const d = await db;
    return new Promise<T>((resolve, reject) => {
      const req = fn(d.transaction('kv', mode).objectStore('kv'));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  };
  return {
    getItem: async (name) => ((await tx('readonly', (s) => s.get(name))) as StorageValue<PersistedWorkspace> | undefined) ?? null,
    setItem: async (name, value) => {
      await tx('readwrite', (s) => s.put(value, name));
    },
    removeItem: async (name) => {
      await tx('readwrite', (s) => s.delete(name));
    },
  };
}
