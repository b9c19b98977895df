/**
 * Files opened in place (the File System Access API): a checkpoint above the in-place threshold
 * is not copied into OPFS; its file handles are kept instead, in IndexedDB (which stores
 * FileSystemHandles as structured clones), and read lazily through them. After a restart the
 * browser asks again for permission to read them (queryPermission / requestPermission).
 */
export type FileHandles = Record<string, FileSystemFileHandle>;

export interface HandleStore {
  put(id: string, handles: FileHandles): Promise<void>;
  get(id: string): Promise<FileHandles | undefined>;
  remove(id: string): Promise<void>;
  clear(): Promise<void>;
}

const DB = 'dem-studio-handles';
const STORE = 'checkpoints';

/** Can this browser hand out file handles (and keep them)? */
export function fileHandlesAvailable(): boolean {
  return typeof indexedDB !== 'undefined' && typeof FileSystemFileHandle !== 'undefined';
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** The HandleStore over IndexedDB. */
export async function indexedDbHandleStore(): Promise<HandleStore> {
  const open = indexedDB.open(DB, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  const db = await request(open);
  const run = async <T>(mode: IDBTransactionMode, work: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> => request(work(db.transaction(STORE, mode).objectStore(STORE)));
  return {
    put: async (id, handles) => void (await run('readwrite', (s) => s.put(handles, id))),
    get: async (id) => (await run('readonly', (s) => s.get(id))) as FileHandles | undefined,
    remove: async (id) => void (await run('readwrite', (s) => s.delete(id))),
    clear: async () => void (await run('readwrite', (s) => s.clear())),
  };
}

/** Read permission for a handle: 'granted', or what asking would need ('prompt', 'denied'). */
export async function readPermission(handle: FileSystemFileHandle, ask: boolean): Promise<PermissionState> {
  const h = handle as FileSystemFileHandle & {
    queryPermission?: (d: { mode: 'read' }) => Promise<PermissionState>;
    requestPermission?: (d: { mode: 'read' }) => Promise<PermissionState>;
  };
  const state = (await h.queryPermission?.({ mode: 'read' })) ?? 'granted';
  if (state === 'granted' || !ask || !h.requestPermission) return state;
  return h.requestPermission({ mode: 'read' });
}
