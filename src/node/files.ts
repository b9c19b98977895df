import { open, readdir, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { type ByteSource, type FileSet } from '../engine/index.ts';

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

/**
 * A checkpoint folder as a FileSet (relative paths, '/'-separated). A path to a single
 * .safetensors file gives a set with just that file, so `dem inspect model.safetensors` works.
 */
export async function folderFileSet(path: string): Promise<FileSet> {
  const info = await stat(path);
  const files = new Map<string, ByteSource>();
  if (info.isFile()) {
    files.set(basename(path), await fileSource(path));
    return files;
  }
  const walk = async (dir: string, depth: number): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      // A link counts as what it points to: a Hugging Face cache snapshot is links into blobs/.
      const target = entry.isSymbolicLink() ? await stat(full).catch(() => undefined) : entry;
      if (!target) continue;
      if (target.isDirectory()) {
        if (depth < 2 && !entry.name.startsWith('.')) await walk(full, depth + 1);
      } else if (target.isFile()) {
        const rel = relative(path, full).split('\\').join('/');
        files.set(rel, await fileSource(full, rel));
      }
    }
  };
  await walk(path, 0);
  return files;
}
