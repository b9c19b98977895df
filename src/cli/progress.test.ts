import { afterEach, describe, expect, it, vi } from 'vitest';
import { CancelledError } from '../engine/index.ts';
import { cancelOnSignals } from './progress.ts';

describe('cancelOnSignals', () => {
  afterEach(() => vi.restoreAllMocks());

  it('Ctrl-C cancels the latest command, a second one exits with 130; repeated commands add no listeners', () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const earlier = cancelOnSignals();
    const listeners = process.listenerCount('SIGINT');
    for (let i = 0; i < 20; i++) cancelOnSignals();
    const signal = cancelOnSignals();
    expect(process.listenerCount('SIGINT')).toBe(listeners);
    expect(process.listenerCount('SIGTERM')).toBeGreaterThan(0);

    process.emit('SIGINT');
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(CancelledError);
    expect(earlier.aborted).toBe(false);
    expect(stderr).toHaveBeenCalledWith('\ncancelling… (again to force)\n');
    expect(exit).not.toHaveBeenCalled();

    process.emit('SIGINT');
    expect(exit).toHaveBeenCalledWith(130);
  });
});
