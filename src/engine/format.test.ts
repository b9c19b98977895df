import { describe, expect, it } from 'vitest';
import { formatBytes } from './format.ts';

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
