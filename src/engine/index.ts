/**
 * The engine's public surface: the Worker, the CLI and (for types) the UI import from here only.
 */
export * from './errors.ts';
export { mulberry32 } from './random.ts';
export { formatBytes, parseByteSize } from './format.ts';
export type { ByteSource, FileSet } from './io/source.ts';
export { blobSource, bytesSource, readText } from './io/source.ts';
export type { ModelSpec, Family, ModelType } from './io/spec.ts';
export { SUPPORTED_MODEL_TYPES } from './io/spec.ts';
export type { PeftAdapterSummary, CheckpointSummary, TensorSummary, LoraSummary } from './io/summary.ts';
export { GpuRuntime, type GpuRuntimeOptions } from './gpu/runtime.ts';
export { requestDevice, summariseDevice, type AdapterSummary } from './gpu/device.ts';
export { normaliseShaderSources, type ShaderSources } from './gpu/shaders.ts';

// Checkpoint I/O
export type { DType, FloatDType, FloatDTypeName } from './io/dtypes.ts';
export { FLOAT_DTYPES, FLOAT_DTYPE_NAMES, isFloatDType, dtypeSize, dtypeName, dtypeFromName, storageBytes, dominantFloatDtype, decodeToF32, encodeFromF32 } from './io/dtypes.ts';
export { readSafetensorsHeader, readTensor, writeSafetensors, safetensorsLayout } from './io/safetensors.ts';
export { parseConfig } from './io/config.ts';
export { expectedTensors, forwardWeights, bindWeights, canonicalName, storedName, classifyTensor, layerOf, roleOf, architecture, type ExpectedTensor } from './io/weights.ts';
export type { WeightRole, WeightLayout, ModelWeights, BlockWeights } from './io/roles.ts';
export { openCheckpoint, type Checkpoint, type TensorRef } from './io/checkpoint.ts';
export {
  openAdapter,
  bindAdapter,
  isAdapterFolder,
  loraDelta,
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  PEFT_PREFIX,
  type LoraAdapter,
  type LoraTarget,
  type BoundLoraTarget,
  type AdapterBinding,
  type AdapterTensor,
} from './io/adapter.ts';
export { inspectAdapter, inspectCheckpoint, summarise, summariseAdapter } from './io/inspect.ts';
export { loadTokenizer, type TextTokenizer } from './io/tokenizer.ts';
export { checkCompatibility, type CompatibilityReport, type CompatibilityItem } from './io/compat.ts';
export { ZipWriter, zipSink } from './io/zip.ts';
export { Zip64Writer, zip64Sink, centralDirectory, type ByteOut } from './io/zip64.ts';

// Merging
export { METHODS, DEFAULT_METHOD, WEIGHT, getMethod, methodNames, methodsTaking, isMethodName, usesWeights, allParams, type MergeMethod, type ParamSpec } from './merge/registry.ts';
export { parseRecipe, recipeToJson, canonicalRecipe, type MergeRecipe, type MethodName, type Coefficient } from './merge/recipe.ts';
export { parseMergekitYaml, recipeToMergekitYaml, MAX_YAML_CHARS } from './merge/yaml.ts';
export { modelCard } from './merge/card.ts';
export { resolveTensorParams, resolveCoefficient } from './merge/coefficients.ts';
export { streamMerge, planMerge, checkMergeable, type MergeJob, type MergedTensor, type PlannedTensor, type MergeProgress } from './merge/execute.ts';
export { exportMerged, planShards, type FolderSink, type FileWriter, type ExportPlan, type ExportResult as MergeExportResult } from './merge/export.ts';
export { ResidentMerge, residentBytes, type Residency, type ResidentBytes } from './merge/resident.ts';

// Model
export { GpuModel, KvCache, type GpuModelOptions, type TokenSpan } from './model/forward.ts';
export { elementCount, type GpuTensor, type GpuView, type WeightView } from './gpu/tensor.ts';
export { perplexity, splitWindows, type PerplexityResult, type WindowScorer } from './model/perplexity.ts';

// Fine-tuning (onnxruntime-web training)
export * from './train/index.ts';
export { uploadCheckpoint, collectMerged, createLoadedModel, type GpuWeights, type LoadedModel } from './model/load.ts';
export { generate, TextStream } from './model/generate.ts';
export { defaultContext, checkContext, checkTextNotBlank, checkTextBytes, MAX_TEXT_BYTES, encodeText, leadingIds, tokenizeTexts, evaluateTexts, type TextPerplexity } from './model/evaluate.ts';

// Task scores: multiple choice and generative items (lm-evaluation-harness conventions)
export { parseTaskFile, DEFAULT_STOP, type TaskFile, type TaskKind, type ChoiceItem, type GenerateItem } from './tasks/file.ts';
export { prepareTask, choiceSpan, moveTrailingWhitespace, stripWhitespace, promptWindow, codePoints, type PreparedTask, type PreparedChoiceItem, type PreparedGenerateItem } from './tasks/prepare.ts';
export {
  scoreTask,
  gpuTaskModel,
  headlineScore,
  headlineMetric,
  cutAtStop,
  choiceItemScore,
  choiceTaskScore,
  generateItemScore,
  generateTaskScore,
  DEFAULT_MAX_TOKENS,
  type TaskScore,
  type ChoiceTaskScore,
  type GenerateTaskScore,
  type ChoiceItemScore,
  type GenerateItemScore,
  type SpanScorer,
  type TaskModel,
  type GreedyOptions,
} from './tasks/score.ts';
export { argmaxFirst, meanStderr, rankCorrelation, averageRanks } from './tasks/stats.ts';
export {
  comparisonTable,
  comparisonCsv,
  comparisonMarkdown,
  type ComparisonInput,
  type ComparisonTable,
  type ComparisonRow,
  type ComparisonDistribution,
  type MeasuredModel,
} from './tasks/comparison.ts';

// Analysis and search
export { layerDistances, type LayerDistances } from './analysis/index.ts';
export { etaSeconds, gridPoints, nelderMead, weightedMean } from './search/index.ts';

// The studio's job: checkpoints + texts → merge → model → perplexity / generation / export
export { planMemory, checkPlan, type MemoryPlan, type MemoryPlanRequest, type PlanOption } from './workspace/plan.ts';
export {
  Workspace,
  type WorkspaceOptions,
  type WorkspaceProgress,
  type WorkOptions,
  type EvaluateRequest,
  type Evaluation,
  type TextScore,
  type TaskRequest,
  type TaskEvaluation,
  type KeyedTaskScore,
  type GenerateRequest,
  type Generation,
} from './workspace/workspace.ts';

// Float64 references and comparison helpers, for tests and tools outside the engine.
export { decodeArray, elementBits, numberToBf16Bits, numberToF16Bits } from './kernels/decode.ref.ts';
export { signElection, compareOutput } from './merge/testkit.ts';
