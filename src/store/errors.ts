import type { ErrorInfo } from '../worker/protocol.ts';
import { toErrorInfo } from '../worker/errors.ts';

/**
 * The one way a slice turns a failure into state: an ErrorInfo record (plain data, so the state
 * stays serialisable and a DemError keeps its code, file and tensor). `error` is what was caught,
 * or a refusal of the store's own given as `new InputError(message)`. A failure the user should
 * hear about besides the slice's own field goes through the notifications slice's `reportError`,
 * which records it the same way.
 */
export function errorRecord(error: unknown): ErrorInfo {
  return toErrorInfo(error);
}

/** The request was cancelled on purpose: nothing to record or report. */
export function isCancelled(info: ErrorInfo): boolean {
  return info.code === 'cancelled';
}
