import { describe, expect, it } from 'vitest';
import { isLearnHash, learnHash, parseLearnHash } from './url.ts';

describe('learn mode address', () => {
  it('round-trips a step with its parameters', () => {
    const route = { step: 'scale', params: { w: '1.5', v: 'prose', big: '1' } };
    const hash = learnHash(route);
    expect(hash).toBe('#/learn/scale?big=1&v=prose&w=1.5');
    expect(parseLearnHash(hash)).toEqual(route);
  });

  it('reads the bare entry and tells studio addresses apart', () => {
    expect(parseLearnHash('#/learn')).toEqual({ step: '', params: {} });
    expect(parseLearnHash('#/learn/add')).toEqual({ step: 'add', params: {} });
    expect(isLearnHash('')).toBe(false);
    expect(isLearnHash('#/learning')).toBe(false);
    expect(parseLearnHash('#storage')).toBeNull();
  });
});
