/**
 * Random-access byte sources. A checkpoint is never read whole: readers ask for the header
 * first, then one tensor's byte range at a time. The browser and the Worker wrap a Blob/File
 * (blobSource); Node wraps a file handle (src/node/files.ts). Both satisfy this interface.
 */
export interface ByteSource {
  /** Path relative to the checkpoint folder (e.g. `model-00001-of-00002.safetensors`), used in errors. */
  readonly name: string;
  readonly size: number;
  /** Reads exactly `length` bytes at `offset`; rejects if the range is outside the source. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** A checkpoint folder: relative path -> source. Paths use '/' and no leading './'. */
export type FileSet = ReadonlyMap<string, ByteSource>;

export function blobSource(blob: Blob, name: string): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > blob.size) {
        throw new RangeError(`${name}: read [${offset}, ${offset + length}) outside file of ${blob.size} bytes`);
      }
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

export function bytesSource(bytes: Uint8Array, name: string): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > bytes.byteLength) {
        throw new RangeError(`${name}: read [${offset}, ${offset + length}) outside file of ${bytes.byteLength} bytes`);
      }
      return bytes.subarray(offset, offset + length);
    },
  };
}

export async function readText(source: ByteSource): Promise<string> {
  return new TextDecoder().decode(await source.read(0, source.size));
}
