import type { FileEntry } from '../worker/protocol.ts';

/**
 * Turning what the user picked or dropped into checkpoints. A checkpoint is a folder holding a
 * config.json; picking a parent folder with several such folders adds each. Loose files (the
 * multi-file input) are one checkpoint.
 */

/** A file with its path relative to what was picked: 'tiny-gpt2/config.json' or 'config.json'. */
export interface PickedFile {
  path: string;
  file: File;
  /** Its File System Access handle, when it came through one (a checkpoint can then be opened in place). */
  handle?: FileSystemFileHandle;
}

export interface CheckpointPick {
  /** The checkpoint folder's name; undefined for loose files (the caller names them). */
  name: string | undefined;
  files: FileEntry[];
}

const dirOf = (path: string): string => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
const baseOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1);
const hidden = (path: string): boolean => path.split('/').some((part) => part.startsWith('.'));
const within = (path: string, dir: string): boolean => dir === '' || path.startsWith(`${dir}/`);
const relativeTo = (path: string, dir: string): string => (dir === '' ? path : path.slice(dir.length + 1));

export function groupCheckpoints(picked: readonly PickedFile[]): CheckpointPick[] {
  const files = picked.filter((p) => !hidden(p.path));
  if (files.length === 0) return [];
  // A checkpoint folder has config.json; a LoRA adapter folder (PEFT) adapter_config.json.
  const configDirs = [...new Set(files.filter((p) => baseOf(p.path) === 'config.json' || baseOf(p.path) === 'adapter_config.json').map((p) => dirOf(p.path)))].sort();
  if (configDirs.length === 0) {
    // No config.json: still one checkpoint, so the engine can say what is missing.
    const dir = commonDir(files.map((p) => p.path));
    return [{ name: dir === '' ? undefined : baseOf(dir), files: files.map((p) => entry(p, dir)) }];
  }
  return configDirs.map((dir) => {
    // A file belongs to the deepest checkpoint folder that contains it.
    const deeper = configDirs.filter((d) => d !== dir && within(d, dir));
    const own = files.filter((p) => within(p.path, dir) && !deeper.some((d) => within(p.path, d)));
    return { name: dir === '' ? undefined : baseOf(dir), files: own.map((p) => entry(p, dir)) };
  });
}

const entry = (p: PickedFile, dir: string): FileEntry => ({ path: relativeTo(p.path, dir), file: p.file, ...(p.handle ? { handle: p.handle } : {}) });

function commonDir(paths: readonly string[]): string {
  const dirs = paths.map((p) => dirOf(p).split('/').filter(Boolean));
  const first = dirs[0] ?? [];
  let n = first.length;
  for (const d of dirs) {
    let i = 0;
    while (i < n && d[i] === first[i]) i += 1;
    n = i;
  }
  return first.slice(0, n).join('/');
}

/** Files from an <input type=file>: a folder pick fills webkitRelativePath, a multi-file pick does not. */
export function fromFileList(list: FileList | readonly File[]): PickedFile[] {
  return Array.from(list, (file) => ({ path: file.webkitRelativePath || file.name, file }));
}

/**
 * Files under a File System Access directory handle (showDirectoryPicker, or a dropped folder),
 * paths starting with its name; each keeps its handle and a lazy File (bytes are read on demand).
 */
export async function fromDirectoryHandle(dir: FileSystemDirectoryHandle, prefix = dir.name): Promise<PickedFile[]> {
  const out: PickedFile[] = [];
  for await (const [name, handle] of (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
    const path = `${prefix}/${name}`;
    if (handle.kind === 'directory') out.push(...(await fromDirectoryHandle(handle as FileSystemDirectoryHandle, path)));
    else out.push({ path, file: await (handle as FileSystemFileHandle).getFile(), handle: handle as FileSystemFileHandle });
  }
  return out;
}

type PickerWindow = Window & { showDirectoryPicker?: (options?: { mode?: 'read' }) => Promise<FileSystemDirectoryHandle> };

/** Whether this browser can open a folder in place (the File System Access API's directory picker). */
export function canOpenInPlace(): boolean {
  return typeof window !== 'undefined' && typeof (window as PickerWindow).showDirectoryPicker === 'function';
}

/** A folder chosen with showDirectoryPicker, its files with their handles; null when the user cancels. */
export async function pickFolderInPlace(): Promise<PickedFile[] | null> {
  try {
    const dir = await (window as PickerWindow).showDirectoryPicker!({ mode: 'read' });
    return await fromDirectoryHandle(dir);
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') return null;
    throw error;
  }
}

/**
 * Files from a drop, walking dropped folders. Items must be read synchronously inside the drop
 * handler (the DataTransfer is emptied afterwards), so entries are collected first. Where the
 * browser gives File System Access handles for dropped items (Chromium), those are used, so a
 * large dropped checkpoint can be opened in place.
 */
export async function fromDataTransfer(data: DataTransfer): Promise<PickedFile[]> {
  type HandleItem = DataTransferItem & { getAsFileSystemHandle?: () => Promise<FileSystemHandle | null> };
  const items = Array.from(data.items).filter((item) => item.kind === 'file');
  // Everything is taken from the items now, before the first await empties them.
  const handles = items.every((item) => typeof (item as HandleItem).getAsFileSystemHandle === 'function') ? items.map((item) => (item as HandleItem).getAsFileSystemHandle!()) : [];
  const entries: FileSystemEntry[] = [];
  const loose: File[] = [];
  for (const item of items) {
    const entry = item.webkitGetAsEntry?.();
    if (entry) entries.push(entry);
    else {
      const file = item.getAsFile();
      if (file) loose.push(file);
    }
  }
  if (entries.length === 0 && loose.length === 0) loose.push(...Array.from(data.files));
  const resolved = handles.length ? await Promise.all(handles).catch(() => []) : [];
  if (resolved.length > 0 && resolved.every((h) => h)) {
    const picked = await Promise.all(
      resolved.map(async (h) =>
        h!.kind === 'directory' ? fromDirectoryHandle(h as FileSystemDirectoryHandle) : [{ path: h!.name, file: await (h as FileSystemFileHandle).getFile(), handle: h as FileSystemFileHandle }],
      ),
    );
    return picked.flat();
  }
  const walked = await Promise.all(entries.map(walk));
  return [...walked.flat(), ...loose.map((file) => ({ path: file.name, file }))];
}

async function walk(entry: FileSystemEntry): Promise<PickedFile[]> {
  const path = entry.fullPath.replace(/^\/+/, '');
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    return [{ path: path || file.name, file }];
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const children: FileSystemEntry[] = [];
  // readEntries returns batches (Chromium: 100 at a time) until an empty one.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    children.push(...batch);
  }
  return (await Promise.all(children.map(walk))).flat();
}
