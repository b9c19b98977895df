import { rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { formatBytes, InputError, StorageFullError, type ExportPlan, type FileWriter, type FolderSink } from '../engine/index.ts';

/**
 * An output folder on disk as an export sink, written as one transaction:
 *
 * - begin (before any GPU work): the folder may not be, contain or lie inside an input folder
 *   (real paths: symlinks resolved), may not be a file, and must be empty or absent unless
 *   `force`; the export is written into a temporary sibling `.<name>.dem-partial-<random>` (same
 *   file system, so the final rename is atomic), whose creation proves the parent writable; the
 *   file system must have room for the plan's exact size.
 * - commit: the temporary folder is renamed to the final name; with `force` an existing folder
 *   is renamed aside first and removed only after the new one is in place.
 * - abort (failure, Ctrl-C, full disk): the temporary folder is removed; also on process exit
 *   (a second Ctrl-C), so nothing half-written is ever left under the final name.
 */
export interface OutputFolderOptions {
  /** Replace a non-empty folder (only once the new export is complete). */
  force?: boolean;
  /** Folders the export reads from. */
  inputs?: readonly string[];
  /** How the folder is named in messages (default: the path as given). */
  label?: string;
  /** The file-system calls used (tests stand in a full or read-only disk). */
  disk?: Partial<Disk>;
}

export interface Disk {
  statfs(path: string): Promise<{ bavail: number; bsize: number }>;
  mkdir(path: string, options?: { recursive?: boolean }): Promise<unknown>;
  open(path: string, flags: string): Promise<{ write(data: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>; close(): Promise<void> }>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { recursive: boolean; force: boolean }): Promise<void>;
}

const nodeDisk: Disk = {
  statfs: (p) => fsp.statfs(p),
  mkdir: (p, o) => fsp.mkdir(p, o),
  open: (p, f) => fsp.open(p, f),
  rename: (a, b) => fsp.rename(a, b),
  rm: (p, o) => fsp.rm(p, o),
};

const code = (error: unknown): string => (error instanceof Error && 'code' in error ? String(error.code) : '');

/** A file-system failure as a one-line typed error (the raw message has the syscall and path; the reason is what matters). */
export function diskError(error: unknown, what: string, file?: string): Error {
  const c = code(error);
  if (c === 'ENOSPC' || c === 'EDQUOT') return new StorageFullError(`${what}: the disk is full (${c}); nothing was kept`, { file, cause: error });
  const reason: Record<string, string> = {
    EROFS: 'the file system is read-only',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOTDIR: 'a part of the path is not a folder',
    EEXIST: 'it already exists',
    ENOENT: 'no such file or folder',
    ENAMETOOLONG: 'the path is too long',
    EISDIR: 'it is a folder',
    EIO: 'an I/O error',
  };
  if (reason[c]) return new InputError(`${what}: ${reason[c]} (${c})`, { file, cause: error });
  return error instanceof Error ? error : new Error(String(error));
}

/** The real path of `path`: symlinks resolved for the part that exists, the rest appended. */
export async function realPathOf(path: string): Promise<string> {
  const full = resolve(path);
  const rest: string[] = [];
  let at = full;
  for (;;) {
    try {
      return join(await fsp.realpath(at), ...rest.reverse());
    } catch (error) {
      const parent = dirname(at);
      if (parent === at || code(error) !== 'ENOENT') throw diskError(error, `cannot resolve ${path}`);
      rest.push(basename(at));
      at = parent;
    }
  }
}

/** `child` lies strictly inside `parent` (both absolute real paths). */
const inside = (child: string, parent: string): boolean => {
  const r = relative(parent, child);
  return r !== '' && r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r);
};

/** Refuses an output folder that is, contains or lies inside one of `inputs` (all real paths). */
export async function checkOutputAgainstInputs(out: string, inputs: readonly string[], label = out): Promise<void> {
  const real = await realPathOf(out);
  for (const input of inputs) {
    const r = await realPathOf(input);
    const why = r === real ? 'is' : inside(real, r) ? 'lies inside' : inside(r, real) ? 'contains' : undefined;
    if (why) throw new InputError(`${label} ${why} the input folder ${input}: writing there would overwrite or mix with the checkpoint being read; choose another folder`);
  }
}

/** Folders that must be taken away on exit when the process ends before commit/abort (a second Ctrl-C). */
const pendingTemp = new Set<string>();
let exitHook = false;
function trackTemp(path: string): void {
  pendingTemp.add(path);
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const p of pendingTemp) rmSync(p, { recursive: true, force: true });
  });
}

export function folderSink(root: string, options: OutputFolderOptions = {}): FolderSink {
  const disk: Disk = { ...nodeDisk, ...options.disk };
  const label = options.label ?? root;
  let target: string | undefined;
  let temp: string | undefined;
  let existing = false;
  let done = false;

  const begin = async (plan: ExportPlan): Promise<void> => {
    if (temp) return;
    target = await realPathOf(root);
    await checkOutputAgainstInputs(target, options.inputs ?? [], label);
    const info = await fsp.stat(target).catch((error: unknown) => {
      if (code(error) === 'ENOENT') return null;
      throw diskError(error, `cannot use ${label}`);
    });
    if (info && !info.isDirectory()) throw new InputError(`${label} exists and is not a folder; choose a folder to write the merged checkpoint into`);
    if (info) {
      existing = true;
      const entries = await fsp.readdir(target).catch((error: unknown) => {
        throw diskError(error, `cannot read ${label}`);
      });
      if (entries.length > 0 && !options.force) {
        throw new InputError(`${label} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}): choose a new folder, or add --force to replace it once the new export is complete`);
      }
    }
    const parent = dirname(target);
    await disk.mkdir(parent, { recursive: true }).catch((error: unknown) => {
      throw diskError(error, `cannot create the folder ${parent} for ${label}`);
    });
    const name = `.${basename(target)}.dem-partial-${Math.random().toString(36).slice(2, 10)}`;
    await disk.mkdir(join(parent, name)).catch((error: unknown) => {
      throw diskError(error, `cannot write in ${parent}`);
    });
    temp = join(parent, name);
    trackTemp(temp);
    const fs = await disk.statfs(parent);
    const available = fs.bavail * fs.bsize;
    if (available < plan.bytes) {
      throw new StorageFullError(
        `not enough free space for the merged checkpoint in ${parent}: it needs ${formatBytes(plan.bytes)} (${plan.bytes} bytes), ${formatBytes(available)} are available; nothing was written`,
        { file: label },
      );
    }
  };

  const create = async (path: string): Promise<FileWriter> => {
    if (!temp) await begin({ files: [], bytes: 0 });
    const file = join(temp!, path);
    const shown = join(label, path);
    await disk.mkdir(dirname(file), { recursive: true }).catch((error: unknown) => {
      throw diskError(error, `cannot write ${shown}`, shown);
    });
    const handle = await disk.open(file, 'w').catch((error: unknown) => {
      throw diskError(error, `cannot write ${shown}`, shown);
    });
    return {
      async write(chunk) {
        try {
          let at = 0;
          while (at < chunk.byteLength) at += (await handle.write(chunk, at, chunk.byteLength - at)).bytesWritten;
        } catch (error) {
          throw diskError(error, `cannot write ${shown}`, shown);
        }
      },
      async close() {
        await handle.close().catch((error: unknown) => {
          throw diskError(error, `cannot write ${shown}`, shown);
        });
      },
      async abort() {
        await handle.close().catch(() => undefined);
      },
    };
  };

  const commit = async (): Promise<void> => {
    if (!temp || !target || done) return;
    const aside = existing ? join(dirname(target), `.${basename(target)}.dem-old-${Math.random().toString(36).slice(2, 10)}`) : undefined;
    try {
      if (aside) await disk.rename(target, aside);
      try {
        await disk.rename(temp, target);
      } catch (error) {
        if (aside) await disk.rename(aside, target).catch(() => undefined);
        throw error;
      }
    } catch (error) {
      throw diskError(error, `cannot move the finished export into place at ${label}`, label);
    }
    pendingTemp.delete(temp);
    done = true;
    if (aside) await disk.rm(aside, { recursive: true, force: true });
  };

  const abort = async (): Promise<void> => {
    if (!temp || done) return;
    done = true;
    await disk.rm(temp, { recursive: true, force: true }).catch(() => undefined);
    pendingTemp.delete(temp);
  };

  return { begin, create, commit, abort };
}
