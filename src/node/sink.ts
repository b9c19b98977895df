import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type FileWriter, type FolderSink } from '../engine/index.ts';

/**
 * A folder on disk as an export sink. Each file is written to `<name>.partial` and renamed when
 * complete, so an interrupted export never leaves a file that looks whole.
 */
export function folderSink(root: string): FolderSink {
  return {
    async create(path) {
      const final = join(root, path);
      const partial = `${final}.partial`;
      await mkdir(dirname(final), { recursive: true });
      const handle = await open(partial, 'w');
      const writer: FileWriter = {
        async write(chunk) {
          let done = 0;
          while (done < chunk.byteLength) {
            const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
            done += bytesWritten;
          }
        },
        async close() {
          await handle.close();
          await rename(partial, final);
        },
        async abort() {
          await handle.close().catch(() => undefined);
          await rm(partial, { force: true });
        },
      };
      return writer;
    },
  };
}
