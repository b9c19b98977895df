import { describe, expect, it } from 'vitest';
import { formatCount, formatDtypes, formatShape } from './format.ts';

describe('formatCount', () => {
  it('keeps small counts exact and scales large ones to one decimal', () => {
    expect(formatCount(0)).toBe('0');
    expect(formatCount(999)).toBe('999');
    expect(formatCount(12_345)).toBe('12.3 K');
    expect(formatCount(124_439_808)).toBe('124.4 M');
    expect(formatCount(6_738_415_616)).toBe('6.7 B');
  });
  it('rounds across a unit boundary to the larger unit', () => {
    expect(formatCount(999_960)).toBe('1.0 M');
    expect(formatCount(999_940)).toBe('999.9 K');
  });
});

describe('formatShape / formatDtypes', () => {
  it('writes shapes like the comments do', () => {
    expect(formatShape([768, 2304])).toBe('(768, 2304)');
    expect(formatShape([])).toBe('()');
  });
  it('orders dtypes by share', () => {
    expect(formatDtypes({ F32: 10, BF16: 1000 })).toBe('BF16 · F32');
  });
});
