import type { AdapterSummary, CheckpointSummary, DemErrorCode } from '../engine/index.ts';

/**
 * The page <-> engine Worker message protocol (STYLE habit 15). Every request carries an `id`;
 * the Worker answers it with zero or more `progress` messages and then exactly one `result` or
 * `error`. `cancel` names the request to stop and gets no reply of its own: the cancelled request
 * ends with an `error` whose code is 'cancelled'. `device-lost` is the one unsolicited message.
 * Everything here is structured-clone data: errors travel as ErrorInfo, never as Error objects.
 */

/** One file of a checkpoint folder: `path` relative to the folder ('model-00001-of-00002.safetensors'). */
export interface FileEntry {
  path: string;
  file: File;
}

/** Each request's fields besides `id` and `kind`. */
export interface RequestBodies {
  init: Record<never, never>;
  /** `name` is what the card and errors call the checkpoint (the folder name). */
  inspect: { name: string; files: FileEntry[] };
}

export type RequestKind = keyof RequestBodies;
export type RequestOf<K extends RequestKind> = { id: number; kind: K } & RequestBodies[K];
export interface CancelRequest {
  id: number;
  kind: 'cancel';
  /** The id of the request to stop. */
  target: number;
}

export type Request = { [K in RequestKind]: RequestOf<K> }[RequestKind] | CancelRequest;

/** What each request resolves to. */
export interface Results {
  init: AdapterSummary;
  inspect: CheckpointSummary;
}

export interface Progress {
  /** Short stage name ('header', 'tensors', ...) as the engine reports it. */
  stage: string;
  done: number;
  total: number;
  file?: string;
}

/**
 * A serialised error. `code` is a DemErrorCode for user-caused failures, 'worker-crashed' when the
 * Worker itself died, 'internal' for anything else (a bug: `name` keeps the original class name).
 */
export type ErrorCode = DemErrorCode | 'worker-crashed' | 'internal';

export interface ErrorInfo {
  name: string;
  code: ErrorCode;
  message: string;
  file?: string;
  tensor?: string;
}

export type Reply =
  | { id: number; kind: 'result'; result: Results[RequestKind] }
  | { id: number; kind: 'error'; error: ErrorInfo }
  | { id: number; kind: 'progress'; progress: Progress }
  | { kind: 'device-lost'; error: ErrorInfo };
