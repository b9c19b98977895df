import { CancelledError, StorageFullError } from '../engine/index.ts';

/**
 * The studio's local storage: checkpoints, validation texts and fine-tuned results live in the
 * Origin Private File System, on the user's disk, private to this origin. Files are streamed in
 * and out (a stored checkpoint is handed back as a lazy File, never read whole), and every write
 * goes to a temporary name that is renamed only when complete, so a full disk or a cancelled
 * copy never leaves a truncated file that looks whole, and a file being replaced keeps its old
 * content until the new one is complete. Paths are '/'-separated.
 */
export interface StoredFile {
  path: string;
  size: number;
  lastModified: number;
}

export interface StorageUsage {
  /** Bytes used by this origin (all storage kinds), as the browser estimates it. */
  usage: number;
  quota: number;
  /** Bytes in the studio's own files. */
  stored: number;
}

const TMP = '.partial-';

function split(path: string): string[] {
  const parts = path.split('/').filter((p) => p && p !== '.');
  if (parts.length === 0 || parts.some((p) => p === '..')) throw new Error(`invalid storage path '${path}'`);
  return parts;
}

function isQuotaError(error: unknown): boolean {
  return error instanceof DOMException && (error.name === 'QuotaExceededError' || error.code === 22);
}

export class LocalStore {
  private constructor(private readonly root: FileSystemDirectoryHandle) {}

  static available(): boolean {
    return typeof navigator !== 'undefined' && !!navigator.storage?.getDirectory;
  }

  static async open(name = 'dem-studio'): Promise<LocalStore> {
    const top = await navigator.storage.getDirectory();
    // Ask the browser not to evict the user's checkpoints under storage pressure (best effort).
    await navigator.storage.persist?.().catch(() => false);
    return new LocalStore(await top.getDirectoryHandle(name, { create: true }));
  }

  private async dir(parts: string[], create: boolean): Promise<FileSystemDirectoryHandle> {
    let d = this.root;
    for (const p of parts) d = await d.getDirectoryHandle(p, { create });
    return d;
  }

  /** Streams `data` to `path`; on a full disk throws StorageFullError and leaves `path` as it was. */
  async put(path: string, data: Blob, options: { signal?: AbortSignal; onProgress?: (written: number, total: number) => void } = {}): Promise<void> {
    const parts = split(path);
    const name = parts.pop()!;
    const dir = await this.dir(parts, true);
    const tmpName = `${TMP}${name}-${Math.random().toString(36).slice(2)}`;
    let tmp: FileSystemFileHandle | undefined;
    let writable: FileSystemWritableFileStream | undefined;
    let written = 0;
    try {
      // Creating the file or its writable can already hit the quota: same handling as a write.
      tmp = await dir.getFileHandle(tmpName, { create: true });
      writable = await tmp.createWritable();
      const reader = data.stream().getReader();
      for (;;) {
        if (options.signal?.aborted) throw new CancelledError(`storing ${path} cancelled`);
        const { done, value } = await reader.read();
        if (done) break;
        await writable.write(value);
        written += value.byteLength;
        options.onProgress?.(written, data.size);
      }
      await writable.close();
    } catch (error) {
      await writable?.abort().catch(() => undefined);
      await dir.removeEntry(tmpName).catch(() => undefined);
      if (isQuotaError(error)) {
        const { usage, quota } = await this.usage();
        throw new StorageFullError(
          `not enough browser storage to keep ${path} (${data.size} bytes; ${usage} of ${quota} bytes in use). ` +
            'Remove stored items or free disk space; nothing already stored was changed.',
          { file: path, cause: error },
        );
      }
      throw error;
    }
    // Write-new-then-swap: until the complete new file replaces it in one step, `path` keeps its
    // old content whole. move() onto an existing name replaces it (Chromium's OPFS); where move is
    // missing or refuses, createWritable on the target does the same (its writes go to a swap file
    // that replaces the target only on close; an abort leaves it as it was).
    const movable = tmp as FileSystemFileHandle & { move?: (name: string) => Promise<void> };
    const moved = movable.move ? await movable.move(name).then(() => true, () => false) : false;
    if (!moved) {
      try {
        const target = await (await dir.getFileHandle(name, { create: true })).createWritable();
        await (await tmp.getFile()).stream().pipeTo(target);
      } finally {
        await dir.removeEntry(tmpName).catch(() => undefined);
      }
    }
  }

  async putText(path: string, text: string): Promise<void> {
    await this.put(path, new Blob([text], { type: 'text/plain' }));
  }

  /** A lazy File over the stored bytes (reading it streams from disk). */
  async file(path: string): Promise<File> {
    const parts = split(path);
    const name = parts.pop()!;
    return (await (await this.dir(parts, false)).getFileHandle(name)).getFile();
  }

  async has(path: string): Promise<boolean> {
    return this.file(path).then(
      () => true,
      () => false,
    );
  }

  /** Every complete file under `prefix` (temporary files of interrupted writes are skipped). */
  async list(prefix = ''): Promise<StoredFile[]> {
    const out: StoredFile[] = [];
    const start = prefix ? await this.dir(split(prefix), false).catch(() => undefined) : this.root;
    if (!start) return out;
    // Another task may remove a folder or file while we walk (the studio deletes a removed
    // checkpoint's copy in the background): what vanished is simply not listed.
    const vanished = (error: unknown): boolean => error instanceof DOMException && error.name === 'NotFoundError';
    const walk = async (d: FileSystemDirectoryHandle, at: string): Promise<void> => {
      try {
        for await (const [name, handle] of (d as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
          const path = at ? `${at}/${name}` : name;
          if (handle.kind === 'directory') await walk(handle as FileSystemDirectoryHandle, path);
          else if (!name.startsWith(TMP)) {
            const f = await (handle as FileSystemFileHandle).getFile().catch((error: unknown) => {
              if (vanished(error)) return null;
              throw error;
            });
            if (f) out.push({ path, size: f.size, lastModified: f.lastModified });
          }
        }
      } catch (error) {
        if (!vanished(error)) throw error;
      }
    };
    await walk(start, prefix.replace(/\/+$/, ''));
    return out.sort((a, b) => a.path.localeCompare(b.path));
  }

  /** Removes a file or a whole folder. */
  async remove(path: string): Promise<void> {
    const parts = split(path);
    const name = parts.pop()!;
    await (await this.dir(parts, false)).removeEntry(name, { recursive: true });
  }

  async clear(): Promise<void> {
    for await (const [name] of (this.root as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
      await this.root.removeEntry(name, { recursive: true });
    }
  }

  async usage(): Promise<StorageUsage> {
    const estimate = await navigator.storage.estimate();
    const stored = (await this.list()).reduce((s, f) => s + f.size, 0);
    return { usage: estimate.usage ?? 0, quota: estimate.quota ?? 0, stored };
  }
}
