import { describe, expect, it } from 'vitest';
import { formatBytes, parseByteSize } from './format.ts';

describe('formatBytes', () => {
  it('uses binary units with one decimal', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.0 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(548_118_077)).toBe('522.7 MiB');
    expect(formatBytes(5 * 2 ** 30)).toBe('5.0 GiB');
    expect(formatBytes(3 * 2 ** 40)).toBe('3.0 TiB');
  });
  it('rounds across a unit boundary to the larger unit', () => {
    expect(formatBytes(1024 * 1023.94)).toBe('1023.9 KiB');
    expect(formatBytes(1024 * 1023.96)).toBe('1.0 MiB');
  });
});

describe('parseByteSize', () => {
  it('reads bytes, decimal (HF max_shard_size) and binary units', () => {
    expect(parseByteSize('5000000000')).toBe(5e9);
    expect(parseByteSize('5GB')).toBe(5e9);
    expect(parseByteSize('500mb')).toBe(5e8);
    expect(parseByteSize('2GiB')).toBe(2 * 2 ** 30);
    expect(parseByteSize('1.5 KiB')).toBe(1536);
    expect(parseByteSize('40000B')).toBe(40000);
  });
  it('refuses zero, negative, fractional-below-one, unknown units and sizes beyond 2^53 bytes', () => {
    for (const bad of ['-5', '0', '0.4', '', 'abc', '5 XB', '1e9', '5GB5', 'Infinity', '9999999999 TB', '--5']) expect(parseByteSize(bad), bad).toBeUndefined();
  });
});
