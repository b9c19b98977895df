import { CancelledError, StorageFullError, type FolderSink } from '../engine/index.ts';

/**
 * The File System Access API as an export sink ("Save merged model to a folder…"). That API can
 * neither rename a folder nor say whether the chosen folder is one the checkpoints were read from,
 * so the closest safe thing is done: the export never writes into the chosen folder itself but
 * into a new subfolder of it (`merged-<base>`, or `merged-<base>-2` … when taken: nothing that
 * exists is ever opened for writing); each file goes through createWritable (a swap file that
 * replaces the target only on close, so a file is whole or absent); config.json, which makes a
 * folder loadable, comes last (merge/export.ts); a failed or cancelled export removes the
 * subfolder. A page closed half way leaves a subfolder without config.json, which no loader takes
 * for a checkpoint.
 */
export interface DirectoryExport extends FolderSink {
  /** The subfolder written (after begin). */
  readonly folder: string | undefined;
}

/** A file or folder name from a checkpoint name: no separators, control or reserved characters. */
export function folderName(name: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = name.replace(/[\u0000-\u001f\u007f/\\:*?"<>|]+/g, '-').replace(/^[.\s-]+|[.\s]+$/g, '').slice(0, 80);
  return clean || 'merged-model';
}

const isNotFound = (e: unknown): boolean => e instanceof DOMException && e.name === 'NotFoundError';
const isTypeMismatch = (e: unknown): boolean => e instanceof DOMException && e.name === 'TypeMismatchError';
const isQuota = (e: unknown): boolean => e instanceof DOMException && e.name === 'QuotaExceededError';

export function directorySink(parent: FileSystemDirectoryHandle, wanted: string, signal?: AbortSignal): DirectoryExport {
  let folder: string | undefined;
  let dir: FileSystemDirectoryHandle | undefined;
  let finished = false;
  const full = (error: unknown, path: string): unknown =>
    isQuota(error) ? new StorageFullError(`${folder}/${path}: not enough disk space; the export was removed`, { file: `${folder}/${path}`, cause: error }) : error;
  return {
    get folder() {
      return folder;
    },
    async begin() {
      const base = folderName(wanted);
      for (let i = 1; !dir; i++) {
        const candidate = i === 1 ? base : `${base}-${i}`;
        // Only a name that is free (neither folder nor file) is taken.
        const taken = await parent.getDirectoryHandle(candidate).then(
          () => true,
          (e: unknown) => !isNotFound(e) || isTypeMismatch(e),
        );
        if (taken) continue;
        const exists = await parent.getFileHandle(candidate).then(
          () => true,
          () => false,
        );
        if (exists) continue;
        dir = await parent.getDirectoryHandle(candidate, { create: true });
        folder = candidate;
      }
    },
    async create(path) {
      if (!dir) throw new Error('directorySink: create before begin');
      if (signal?.aborted) throw new CancelledError();
      const stream = await (await dir.getFileHandle(path, { create: true })).createWritable().catch((e: unknown) => {
        throw full(e, path);
      });
      return {
        write: (chunk) =>
          stream.write(chunk as Uint8Array<ArrayBuffer>).catch((e: unknown) => {
            throw full(e, path);
          }),
        close: () =>
          stream.close().catch((e: unknown) => {
            throw full(e, path);
          }),
        abort: () => stream.abort(),
      };
    },
    async commit() {
      finished = true;
    },
    async abort() {
      if (finished || !folder) return;
      finished = true;
      await parent.removeEntry(folder, { recursive: true }).catch(() => undefined);
    },
  };
}
