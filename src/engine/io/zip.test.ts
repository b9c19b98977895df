import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ZipWriter, crc32 } from './zip.ts';

describe('zip', () => {
  it('CRC-32 matches the check value and zlib on random data, also when continued', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    const data = Uint8Array.from({ length: 100_003 }, () => (Math.random() * 256) | 0);
    expect(crc32(data)).toBe(zlibCrc32(data));
    expect(crc32(data.subarray(777), crc32(data.subarray(0, 777)))).toBe(zlibCrc32(data));
  });

  it('writes an archive that Info-ZIP unzip verifies and extracts byte for byte', () => {
    const files: Record<string, Uint8Array> = {
      'config.json': new TextEncoder().encode('{"a": 1}\n'),
      'model.safetensors': Uint8Array.from({ length: 65_537 }, () => (Math.random() * 256) | 0),
      'empty.txt': new Uint8Array(0),
      'sub/nested.yml': new TextEncoder().encode('x: 1\n'),
    };
    const zip = new ZipWriter();
    for (const [name, bytes] of Object.entries(files)) {
      zip.begin(name);
      // In chunks, as an export streams them.
      for (let i = 0; i < bytes.length; i += 10_000) zip.write(bytes.subarray(i, i + 10_000));
      zip.end();
    }
    zip.begin('dropped.bin');
    zip.write(new Uint8Array(10));
    zip.abort();
    const parts = zip.finish();
    const dir = mkdtempSync(join(tmpdir(), 'dem-zip-'));
    try {
      const archive = join(dir, 'out.zip');
      writeFileSync(archive, Buffer.concat(parts));
      expect(execFileSync('unzip', ['-t', archive], { encoding: 'utf8' })).toContain('No errors detected');
      execFileSync('unzip', ['-q', archive, '-d', join(dir, 'x')]);
      for (const [name, bytes] of Object.entries(files)) expect(Buffer.compare(readFileSync(join(dir, 'x', name)), Buffer.from(bytes))).toBe(0);
      expect(execFileSync('unzip', ['-Z1', archive], { encoding: 'utf8' }).trim().split('\n')).toEqual(Object.keys(files));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
