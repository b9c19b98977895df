import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { formatBytes, InputError, type ByteSource, type FileSet } from '../engine/index.ts';

/** A ByteSource over a file on disk: each read opens, reads the range and closes (no whole-file loads). */
export async function fileSource(path: string, name = basename(path)): Promise<ByteSource> {
  const { size } = await stat(path);
  return {
    name,
    size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) {
        throw new RangeError(`${name}: read [${offset}, ${offset + length}) outside file of ${size} bytes`);
      }
      const handle = await open(path, 'r');
      try {
        const out = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(out, done, length - done, offset + done);
          if (bytesRead === 0) throw new RangeError(`${name}: file ended at ${offset + done} (expected ${size} bytes)`);
          done += bytesRead;
        }
        return out;
      } finally {
        await handle.close();
      }
    },
  };
}

const within = (child: string, root: string): boolean => {
  const r = relative(root, child);
  return r === '' || (r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r));
};

/**
 * Where symlinks in the checkpoint folder `real` may point: inside it, or, for a Hugging Face
 * cache snapshot (`models--org--name/snapshots/<revision>/`, whose files are links to
 * `../../blobs/<hash>`), inside that repository's cache folder.
 */
function linkRoot(real: string): string {
  const snapshots = dirname(real);
  const repo = dirname(snapshots);
  return basename(snapshots) === 'snapshots' && /^(models|datasets)--/.test(basename(repo)) ? repo : real;
}

/**
 * A checkpoint folder as a FileSet (relative paths, '/'-separated). A path to a single
 * .safetensors file gives a set with just that file, so `dem inspect model.safetensors` works.
 * Symlinks are followed while they stay inside the folder (or its Hugging Face cache repository,
 * see linkRoot); one that leads elsewhere is refused by name rather than read.
 */
export async function folderFileSet(path: string): Promise<FileSet> {
  const info = await stat(path).catch((cause: unknown) => {
    const code = cause instanceof Error && 'code' in cause ? String(cause.code) : '';
    throw new InputError(code === 'ENOENT' ? 'no such file or folder' : `cannot open: ${cause instanceof Error ? cause.message : String(cause)}`, { file: path, cause });
  });
  const files = new Map<string, ByteSource>();
  if (info.isFile()) {
    files.set(basename(path), await fileSource(path));
    return files;
  }
  if (!info.isDirectory()) throw new InputError('is neither a checkpoint folder nor a .safetensors file', { file: path });
  const root = linkRoot(await realpath(path));
  const walk = async (dir: string, depth: number): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      const rel = relative(path, full).split('\\').join('/');
      let kind: 'dir' | 'file' | 'other' = entry.isDirectory() ? 'dir' : entry.isFile() ? 'file' : 'other';
      if (entry.isSymbolicLink()) {
        const target = await realpath(full).catch(() => undefined);
        if (target === undefined) continue; // a dangling link is no file
        if (!within(target, root)) throw new InputError(`a symlink to ${target}, outside the checkpoint folder: copy the file into the folder instead`, { file: rel });
        const s = await stat(target);
        kind = s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';
      }
      if (kind === 'dir') {
        if (depth < 2 && !entry.name.startsWith('.')) await walk(full, depth + 1);
      } else if (kind === 'file') {
        files.set(rel, await fileSource(full, rel));
      }
    }
  };
  await walk(path, 0);
  return files;
}

/**
 * A UTF-8 text file read in chunks (invalid bytes become U+FFFD, as readFileSync did): only
 * regular files (not /dev/zero, a FIFO or a folder), at most `maxBytes`, checked before and while
 * reading so a file that grows cannot make it read on. InputError naming the file otherwise.
 * Synchronous: the CLI reads its inputs before any GPU work.
 */
export function readTextFileBounded(path: string, maxBytes: number, shown = path, what = 'this file'): string {
  const fail = (message: string, cause?: unknown): never => {
    throw new InputError(message, { file: shown, cause });
  };
  let fd: number;
  try {
    // Non-blocking, so a FIFO is refused below instead of waiting for a writer.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (cause) {
    const code = cause instanceof Error && 'code' in cause ? String(cause.code) : '';
    return fail(code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : `cannot read: ${cause instanceof Error ? cause.message : String(cause)}`, cause);
  }
  try {
    const info = fstatSync(fd);
    if (info.isDirectory()) fail('is a folder, not a text file');
    if (!info.isFile()) fail('is not a regular file (a device, pipe or socket): give a text file');
    if (info.size > maxBytes) fail(`is ${formatBytes(info.size)}, more than the ${formatBytes(maxBytes)} ${what} may have here`);
    // ignoreBOM keeps a leading U+FEFF, as readFileSync(…, 'utf8') did.
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    const chunk = new Uint8Array(Math.min(2 ** 20, Math.max(1, info.size)));
    const parts: string[] = [];
    let total = 0;
    for (;;) {
      const read = readSync(fd, chunk, 0, chunk.byteLength, null);
      if (read === 0) break;
      total += read;
      if (total > maxBytes) fail(`grew past the ${formatBytes(maxBytes)} ${what} may have here while being read`);
      parts.push(decoder.decode(chunk.subarray(0, read), { stream: true }));
    }
    parts.push(decoder.decode());
    return parts.join('');
  } finally {
    closeSync(fd);
  }
}
