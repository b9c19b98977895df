import { InputError } from '../errors.ts';
import type { FolderSink } from '../merge/export.ts';
import { crc32 } from './zip.ts';

/**
 * A streaming, store-only ZIP writer with ZIP64 (PKWARE APPNOTE 6.3.x §4.3.9 data descriptor,
 * §4.5.3 ZIP64 extra field, §4.3.14–15 ZIP64 end record and locator). Each entry's bytes go
 * straight to `out` as they come — nothing but the central directory (one small record per file)
 * is kept — so a merged model streams into a file (OPFS in the browser) of any size. The local
 * header carries no sizes (flag bit 3); the data descriptor after the data has them, 8 bytes wide
 * when the entry needs ZIP64 (as readers expect from the central directory's ZIP64 field). Times
 * are fixed at 1980-01-01 00:00 so the same input gives the same bytes.
 */
export interface ByteOut {
  write(chunk: Uint8Array): Promise<void>;
}

const MAX32 = 0xffffffff;
const MAX16 = 0xffff;
const DOS_DATE = (1 << 5) | 1; // 1980-01-01
const FLAGS = 0x0808; // bit 3: sizes in the data descriptor; bit 11: UTF-8 names

export interface Zip64Entry {
  name: Uint8Array;
  crc: number;
  size: number;
  offset: number;
}

const needs64 = (e: Zip64Entry): boolean => e.size >= MAX32 || e.offset >= MAX32;

/** The central directory and end records for `entries`, starting at byte `start` of the archive. */
export function centralDirectory(entries: readonly Zip64Entry[], start: number): Uint8Array {
  const records: Uint8Array[] = [];
  for (const e of entries) {
    const bigSize = e.size >= MAX32;
    const bigOffset = e.offset >= MAX32;
    const extra = (bigSize ? 16 : 0) + (bigOffset ? 8 : 0);
    const h = new Uint8Array(46 + e.name.length + (extra ? 4 + extra : 0));
    const v = new DataView(h.buffer);
    v.setUint32(0, 0x02014b50, true);
    v.setUint16(4, 45, true); // made by: 4.5 (ZIP64)
    v.setUint16(6, needs64(e) ? 45 : 20, true);
    v.setUint16(8, FLAGS, true);
    v.setUint16(10, 0, true); // stored
    v.setUint16(12, 0, true);
    v.setUint16(14, DOS_DATE, true);
    v.setUint32(16, e.crc, true);
    v.setUint32(20, bigSize ? MAX32 : e.size, true);
    v.setUint32(24, bigSize ? MAX32 : e.size, true);
    v.setUint16(28, e.name.length, true);
    v.setUint16(30, extra ? 4 + extra : 0, true);
    v.setUint32(42, bigOffset ? MAX32 : e.offset, true);
    h.set(e.name, 46);
    if (extra) {
      // Only the fields set to 0xFFFFFFFF above, in the order uncompressed, compressed, offset.
      let p = 46 + e.name.length;
      v.setUint16(p, 0x0001, true);
      v.setUint16(p + 2, extra, true);
      p += 4;
      if (bigSize) {
        v.setBigUint64(p, BigInt(e.size), true);
        v.setBigUint64(p + 8, BigInt(e.size), true);
        p += 16;
      }
      if (bigOffset) v.setBigUint64(p, BigInt(e.offset), true);
    }
    records.push(h);
  }
  const size = records.reduce((s, r) => s + r.length, 0);
  const end = start + size;
  const zip64 = entries.length >= MAX16 || size >= MAX32 || start >= MAX32;
  const tail = new Uint8Array((zip64 ? 56 + 20 : 0) + 22);
  const v = new DataView(tail.buffer);
  let p = 0;
  if (zip64) {
    v.setUint32(0, 0x06064b50, true);
    v.setBigUint64(4, 44n, true); // size of the rest of this record
    v.setUint16(12, 45, true);
    v.setUint16(14, 45, true);
    v.setBigUint64(24, BigInt(entries.length), true);
    v.setBigUint64(32, BigInt(entries.length), true);
    v.setBigUint64(40, BigInt(size), true);
    v.setBigUint64(48, BigInt(start), true);
    v.setUint32(56, 0x07064b50, true);
    v.setBigUint64(64, BigInt(end), true); // where the ZIP64 end record starts
    v.setUint32(72, 1, true); // disks
    p = 76;
  }
  v.setUint32(p, 0x06054b50, true);
  v.setUint16(p + 8, Math.min(entries.length, MAX16), true);
  v.setUint16(p + 10, Math.min(entries.length, MAX16), true);
  v.setUint32(p + 12, Math.min(size, MAX32), true);
  v.setUint32(p + 16, Math.min(start, MAX32), true);
  const out = new Uint8Array(size + tail.length);
  let q = 0;
  for (const r of records) {
    out.set(r, q);
    q += r.length;
  }
  out.set(tail, q);
  return out;
}

export class Zip64Writer {
  private readonly entries: Zip64Entry[] = [];
  private offset = 0;
  private open: { name: Uint8Array; crc: number; size: number; offset: number } | undefined;

  constructor(private readonly out: ByteOut) {}

  /** Bytes written so far. */
  get bytes(): number {
    return this.offset;
  }

  async begin(path: string): Promise<void> {
    if (this.open) throw new InputError(`zip: '${path}' started before the previous file ended`);
    const name = new TextEncoder().encode(path);
    const h = new Uint8Array(30 + name.length);
    const v = new DataView(h.buffer);
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(4, 45, true);
    v.setUint16(6, FLAGS, true);
    v.setUint16(12, DOS_DATE, true);
    v.setUint16(26, name.length, true);
    h.set(name, 30);
    this.open = { name, crc: 0, size: 0, offset: this.offset };
    await this.push(h);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (!this.open) throw new InputError('zip: write outside a file');
    this.open.crc = crc32(chunk, this.open.crc);
    this.open.size += chunk.length;
    await this.push(chunk);
  }

  async end(): Promise<void> {
    const f = this.open;
    if (!f) throw new InputError('zip: end without a file');
    const entry = { name: f.name, crc: f.crc, size: f.size, offset: f.offset };
    const wide = needs64(entry);
    const d = new Uint8Array(wide ? 24 : 16);
    const v = new DataView(d.buffer);
    v.setUint32(0, 0x08074b50, true);
    v.setUint32(4, f.crc, true);
    if (wide) {
      v.setBigUint64(8, BigInt(f.size), true);
      v.setBigUint64(16, BigInt(f.size), true);
    } else {
      v.setUint32(8, f.size, true);
      v.setUint32(12, f.size, true);
    }
    await this.push(d);
    this.entries.push(entry);
    this.open = undefined;
  }

  /**
   * Ends a file that failed half way. The bytes already streamed stay in the archive but no
   * central-directory entry points at them, so the file is not listed.
   */
  async abort(): Promise<void> {
    this.open = undefined;
  }

  async finish(): Promise<void> {
    if (this.open) throw new InputError('zip: finish with a file still open');
    await this.push(centralDirectory(this.entries, this.offset));
  }

  private async push(part: Uint8Array): Promise<void> {
    await this.out.write(part);
    this.offset += part.length;
  }
}

/** An export sink (merge/export.ts FolderSink) that streams each file as an entry of `zip`. */
export function zip64Sink(zip: Zip64Writer): FolderSink {
  return {
    async create(path) {
      await zip.begin(path);
      return {
        write: (chunk) => zip.write(chunk),
        close: () => zip.end(),
        abort: () => zip.abort(),
      };
    },
  };
}
