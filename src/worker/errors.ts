import {
  CancelledError,
  ConfigError,
  DemError,
  GpuDeviceLostError,
  GpuOutOfMemoryError,
  GpuUnavailableError,
  GpuValidationError,
  IncompatibleCheckpointError,
  InputError,
  SafetensorsError,
  StorageFullError,
  TokenizerError,
  UnsupportedArchitectureError,
  type DemErrorCode,
} from '../engine/index.ts';
import type { ErrorInfo } from './protocol.ts';

/**
 * Errors cross the Worker boundary as ErrorInfo (structured clone drops Error subclasses) and
 * are rebuilt on the page side as the same DemError subclass, so callers can still
 * `instanceof SafetensorsError` and read `.file` / `.tensor`.
 */

/** The engine Worker stopped (failed to load, threw at top level, or a message could not be decoded). */
export class WorkerCrashedError extends Error {
  readonly code = 'worker-crashed' as const;
  readonly file?: string = undefined;
  readonly tensor?: string = undefined;
  constructor(message: string) {
    super(message);
    this.name = 'WorkerCrashedError';
  }
}

/** A failure that is not a DemError: a bug in the engine or the Worker, reported with its original name. */
export class InternalEngineError extends Error {
  readonly code = 'internal' as const;
  readonly file?: string = undefined;
  readonly tensor?: string = undefined;
  constructor(name: string, message: string) {
    super(message);
    this.name = name === 'Error' ? 'InternalEngineError' : name;
  }
}

/** What the engine client rejects with. */
export type EngineError = DemError | WorkerCrashedError | InternalEngineError;

type DemErrorClass = new (message: string) => DemError;

const classes: Record<Exclude<DemErrorCode, 'cancelled'>, DemErrorClass> = {
  safetensors: SafetensorsError,
  config: ConfigError,
  'unsupported-architecture': UnsupportedArchitectureError,
  tokenizer: TokenizerError,
  incompatible: IncompatibleCheckpointError,
  input: InputError,
  'gpu-unavailable': GpuUnavailableError,
  'gpu-device-lost': GpuDeviceLostError,
  'gpu-out-of-memory': GpuOutOfMemoryError,
  'storage-full': StorageFullError,
  'gpu-validation': GpuValidationError,
};

export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof DemError) {
    return { name: error.name, code: error.code, message: error.message, file: error.file, tensor: error.tensor };
  }
  if (error instanceof WorkerCrashedError || error instanceof InternalEngineError) {
    return { name: error.name, code: error.code, message: error.message };
  }
  if (error instanceof Error) return { name: error.name, code: 'internal', message: error.message };
  return { name: 'Error', code: 'internal', message: String(error) };
}

export function fromErrorInfo(info: ErrorInfo): EngineError {
  if (info.code === 'worker-crashed') return new WorkerCrashedError(info.message);
  if (info.code === 'internal') return new InternalEngineError(info.name, info.message);
  const Class = info.code === 'cancelled' ? CancelledError : classes[info.code];
  // The message already carries the "file, tensor 'x': " prefix DemError added in the Worker;
  // passing file/tensor to the constructor again would repeat it, so they are set afterwards.
  const error = new Class(info.message);
  Object.defineProperties(error, {
    file: { value: info.file, enumerable: true },
    tensor: { value: info.tensor, enumerable: true },
  });
  return error;
}
