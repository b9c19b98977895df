/**
 * The engine's public surface: the Worker, the CLI and (for types) the UI import from here only.
 */
export * from './errors.ts';
export type { ByteSource, FileSet } from './io/source.ts';
export { blobSource, bytesSource, readText } from './io/source.ts';
export type { ModelSpec, Family, ModelType } from './io/spec.ts';
export { SUPPORTED_MODEL_TYPES } from './io/spec.ts';
export type { CheckpointSummary, TensorSummary } from './io/summary.ts';
export { GpuRuntime, type GpuRuntimeOptions } from './gpu/runtime.ts';
export { requestDevice, summariseDevice, type AdapterSummary } from './gpu/device.ts';
export { normaliseShaderSources, type ShaderSources } from './gpu/shaders.ts';
