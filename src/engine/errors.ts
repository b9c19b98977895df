/**
 * Typed errors. Every failure the user can cause (bad file, unsupported model, lost device)
 * is a DemError subclass with a stable `code`, and names the file / tensor it concerns, so the
 * UI and the CLI can print one clear line and keep everything else the user loaded.
 */
export type DemErrorCode =
  | 'safetensors'
  | 'config'
  | 'unsupported-architecture'
  | 'tokenizer'
  | 'incompatible'
  | 'input'
  | 'gpu-unavailable'
  | 'gpu-device-lost'
  | 'gpu-out-of-memory'
  | 'gpu-validation'
  | 'storage-full'
  | 'cancelled';

export interface DemErrorDetails {
  file?: string;
  tensor?: string;
  cause?: unknown;
}

export class DemError extends Error {
  readonly code: DemErrorCode;
  readonly file?: string;
  readonly tensor?: string;

  constructor(code: DemErrorCode, message: string, details: DemErrorDetails = {}) {
    const where = [details.file, details.tensor && `tensor '${details.tensor}'`].filter(Boolean).join(', ');
    super(where ? `${where}: ${message}` : message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.file = details.file;
    this.tensor = details.tensor;
  }
}

export class SafetensorsError extends DemError {
  constructor(message: string, details: DemErrorDetails = {}) {
    super('safetensors', message, details);
  }
}
export class ConfigError extends DemError {
  constructor(message: string, details: DemErrorDetails = {}) {
    super('config', message, details);
  }
}
export class UnsupportedArchitectureError extends DemError {
  constructor(message: string, details: DemErrorDetails = {}) {
    super('unsupported-architecture', message, details);
  }
}
export class TokenizerError extends DemError {
  constructor(message: string, details: DemErrorDetails = {}) {
    super('tokenizer', message, details);
  }
}
export class IncompatibleCheckpointError extends DemError {
  constructor(message: string, details: DemErrorDetails = {}) {
    super('incompatible', message, details);
  }
}
export class InputError extends DemError {
  constructor(message: string, details: DemErrorDetails = {}) {
    super('input', message, details);
  }
}
export class GpuUnavailableError extends DemError {
  constructor(message: string, details: DemErrorDetails = {}) {
    super('gpu-unavailable', message, details);
  }
}
export class GpuDeviceLostError extends DemError {
  constructor(message: string, details: DemErrorDetails = {}) {
    super('gpu-device-lost', message, details);
  }
}
export class GpuOutOfMemoryError extends DemError {
  constructor(message: string, details: DemErrorDetails = {}) {
    super('gpu-out-of-memory', message, details);
  }
}
export class GpuValidationError extends DemError {
  constructor(message: string, details: DemErrorDetails = {}) {
    super('gpu-validation', message, details);
  }
}
export class StorageFullError extends DemError {
  constructor(message: string, details: DemErrorDetails = {}) {
    super('storage-full', message, details);
  }
}
export class CancelledError extends DemError {
  constructor(message = 'cancelled', details: DemErrorDetails = {}) {
    super('cancelled', message, details);
  }
}

/** Throws CancelledError when the signal has fired; call between units of work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}
