import { InputError } from '../errors.ts';
import type { FolderSink } from '../merge/export.ts';

/**
 * A small store-only (method 0, no compression) ZIP writer (PKWARE APPNOTE 6.3.x §4.3): local
 * file header + data per entry, then the central directory and its end record. Weights barely
 * compress, so storing keeps it simple and streamable: chunks are kept as given and concatenated
 * only by the Blob the caller builds. No ZIP64: each file and the whole archive must stay under
 * 4 GiB. Times are fixed at 1980-01-01 00:00 so the same input gives the same bytes.
 */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, reflected 0xEDB88320) continued from `crc` (start with 0). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const LIMIT = 0xffffffff;
const DOS_DATE = (0 << 9) | (1 << 5) | 1; // 1980-01-01

interface Entry {
  name: Uint8Array;
  crc: number;
  size: number;
  offset: number;
}

export class ZipWriter {
  private readonly parts: Uint8Array[] = [];
  private readonly entries: Entry[] = [];
  private offset = 0;
  private open: { name: Uint8Array; header: Uint8Array; crc: number; size: number; offset: number } | undefined;

  /** Starts a file; its bytes follow through `write`, then `end`. */
  begin(path: string): void {
    if (this.open) throw new InputError(`zip: '${path}' started before the previous file ended`);
    const name = new TextEncoder().encode(path);
    const header = new Uint8Array(30 + name.length);
    this.open = { name, header, crc: 0, size: 0, offset: this.offset };
    header.set(name, 30);
    this.push(header);
  }

  write(chunk: Uint8Array): void {
    if (!this.open) throw new InputError('zip: write outside a file');
    this.open.crc = crc32(chunk, this.open.crc);
    this.open.size += chunk.length;
    if (this.open.size > LIMIT) throw new InputError(`zip: '${new TextDecoder().decode(this.open.name)}' exceeds 4 GiB (ZIP64 is not supported)`);
    this.push(chunk);
  }

  end(): void {
    const f = this.open;
    if (!f) throw new InputError('zip: end without a file');
    // The local header is filled in now that size and CRC are known (no data descriptor needed).
    localHeader(new DataView(f.header.buffer), f.name.length, f.crc, f.size);
    this.entries.push({ name: f.name, crc: f.crc, size: f.size, offset: f.offset });
    this.open = undefined;
  }

  /** Drops the file being written (an aborted export). */
  abort(): void {
    if (!this.open) return;
    const start = this.open.offset;
    while (this.offset > start) this.offset -= this.parts.pop()!.length;
    this.open = undefined;
  }

  add(path: string, bytes: Uint8Array): void {
    this.begin(path);
    this.write(bytes);
    this.end();
  }

  /** The archive's parts in order (new Blob(parts) is the .zip). */
  finish(): Uint8Array[] {
    if (this.open) throw new InputError('zip: finish with a file still open');
    const start = this.offset;
    for (const e of this.entries) {
      const h = new Uint8Array(46 + e.name.length);
      const v = new DataView(h.buffer);
      v.setUint32(0, 0x02014b50, true);
      v.setUint16(4, 20, true); // made by: version 2.0
      v.setUint16(6, 20, true); // needed: 2.0
      v.setUint16(8, 0x0800, true); // UTF-8 names
      v.setUint16(10, 0, true); // stored
      v.setUint16(12, 0, true);
      v.setUint16(14, DOS_DATE, true);
      v.setUint32(16, e.crc, true);
      v.setUint32(20, e.size, true);
      v.setUint32(24, e.size, true);
      v.setUint16(28, e.name.length, true);
      v.setUint32(42, e.offset, true);
      h.set(e.name, 46);
      this.push(h);
    }
    const size = this.offset - start;
    const end = new Uint8Array(22);
    const v = new DataView(end.buffer);
    v.setUint32(0, 0x06054b50, true);
    v.setUint16(8, this.entries.length, true);
    v.setUint16(10, this.entries.length, true);
    v.setUint32(12, size, true);
    v.setUint32(16, start, true);
    this.push(end);
    if (this.offset > LIMIT || this.entries.length > 0xffff) throw new InputError('zip: the archive exceeds 4 GiB or 65535 files (ZIP64 is not supported)');
    return this.parts;
  }

  private push(part: Uint8Array): void {
    this.parts.push(part);
    this.offset += part.length;
  }
}

function localHeader(v: DataView, nameLength: number, crc: number, size: number): void {
  v.setUint32(0, 0x04034b50, true);
  v.setUint16(4, 20, true);
  v.setUint16(6, 0x0800, true);
  v.setUint16(8, 0, true);
  v.setUint16(10, 0, true);
  v.setUint16(12, DOS_DATE, true);
  v.setUint32(14, crc, true);
  v.setUint32(18, size, true);
  v.setUint32(22, size, true);
  v.setUint16(26, nameLength, true);
  v.setUint16(28, 0, true);
}

/** An export sink (merge/export.ts FolderSink) that writes each file as an entry of `zip`. */
export function zipSink(zip: ZipWriter): FolderSink {
  return {
    async create(path) {
      zip.begin(path);
      return {
        write: async (chunk) => zip.write(chunk),
        close: async () => zip.end(),
        abort: async () => zip.abort(),
      };
    },
  };
}
