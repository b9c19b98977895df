import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32 } from './zip.ts';
import { centralDirectory, Zip64Writer } from './zip64.ts';

/**
 * The streamed ZIP64 writer, read back by an independent reader: Python's zipfile (CPython's own
 * ZIP64 implementation). A small archive unzips to the exact bytes with CRCs checked; a > 4 GiB
 * layout is checked without writing 4 GiB: the central directory for synthetic sizes and offsets
 * is placed in a sparse file at its offset and zipfile lists it.
 */
const tmp = mkdtempSync(join(tmpdir(), 'dem-zip64-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function python(script: string, ...args: string[]): string {
  return execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8' });
}

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('Zip64Writer', () => {
  it('streams entries that Python zipfile unzips to the same bytes (CRCs checked); chunks reach the output as written', async () => {
    const parts: Uint8Array[] = [];
    const zip = new Zip64Writer({ write: async (c) => void parts.push(c) });
    const files: [string, Uint8Array[]][] = [
      ['config.json', [new TextEncoder().encode('{"a": 1}\n')]],
      ['model.safetensors', [randomBytes(70_000, 1), randomBytes(1, 2), randomBytes(33_333, 3)]],
      ['empty.txt', []],
      ['sub/ünïcode.md', [new TextEncoder().encode('# card\n')]],
    ];
    for (const [name, chunks] of files) {
      await zip.begin(name);
      for (const c of chunks) {
        const before = parts.length;
        await zip.write(c);
        expect(parts.length).toBe(before + 1);
        expect(parts.at(-1)).toBe(c);
      }
      await zip.end();
    }
    await zip.begin('aborted.bin');
    await zip.write(randomBytes(100, 4));
    await zip.abort();
    await zip.finish();
    const path = join(tmp, 'small.zip');
    writeFileSync(path, Buffer.concat(parts));
    expect(zip.bytes).toBe(parts.reduce((s, p) => s + p.length, 0));
    const listing = JSON.parse(
      python(
        'import sys, zipfile, json, hashlib\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(json.dumps([[i.filename, i.file_size, hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()]))',
        path,
      ),
    ) as [string, number, string][];
    const sha = (chunks: Uint8Array[]): string => execFileSync('sha256sum', { input: Buffer.concat(chunks) }).toString().split(' ')[0]!;
    expect(listing).toEqual(files.map(([name, chunks]) => [name, chunks.reduce((s, c) => s + c.length, 0), sha(chunks)]));
    // Info-ZIP's unzip (what the e2e export check uses) tests every entry's CRC too.
    expect(execFileSync('unzip', ['-t', path], { encoding: 'utf8' })).toMatch(/No errors detected/);
  });

  it('CRC-32 of the standard check string is 0xCBF43926, and continues across chunks', () => {
    const text = new TextEncoder().encode('123456789');
    expect(crc32(text)).toBe(0xcbf43926);
    expect(crc32(text.subarray(4), crc32(text.subarray(0, 4)))).toBe(0xcbf43926);
  });

  it('a > 4 GiB archive: ZIP64 extra fields, end record and locator that zipfile reads (synthetic sizes and offsets)', () => {
    const GiB = 2 ** 30;
    const enc = (s: string) => new TextEncoder().encode(s);
    const entries = [
      { name: enc('config.json'), crc: 0x12345678, size: 1000, offset: 0 },
      { name: enc('model-00001-of-00002.safetensors'), crc: 0x9abcdef0, size: 5 * GiB, offset: 1100 },
      { name: enc('model-00002-of-00002.safetensors'), crc: 0x0badf00d, size: 3 * GiB, offset: 5 * GiB + 1200 },
      { name: enc('README.md'), crc: 0x01020304, size: 10, offset: 8 * GiB + 1300 },
    ];
    const start = 8 * GiB + 1400;
    const cd = centralDirectory(entries, start);
    const path = join(tmp, 'sparse.zip');
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, cd, 0, cd.length, start); // the bytes before `start` are a hole
    } finally {
      closeSync(fd);
    }
    const listing = JSON.parse(
      python('import sys, zipfile, json\nz = zipfile.ZipFile(sys.argv[1])\nprint(json.dumps([[i.filename, i.file_size, i.compress_size, i.header_offset, i.CRC, i.flag_bits] for i in z.infolist()]))', path),
    ) as unknown[];
    expect(listing).toEqual(entries.map((e) => [new TextDecoder().decode(e.name), e.size, e.size, e.offset, e.crc, 0x0808]));
    // The small-archive form has no ZIP64 end record: the classic end record is the last 22 bytes.
    const small = centralDirectory(entries.slice(0, 1), 1100);
    const v = new DataView(small.buffer, small.length - 22);
    expect([v.getUint32(0, true), v.getUint16(8, true), v.getUint32(16, true)]).toEqual([0x06054b50, 1, 1100]);
    expect(new DataView(cd.buffer).getUint32(cd.length - 22 - 20 - 56, true)).toBe(0x06064b50);
  });
});
