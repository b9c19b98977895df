import type { AdapterSummary, CheckpointSummary, CompatibilityItem, DemErrorCode, LayerDistances, MergeRecipe, TaskKind, TaskScore } from '../engine/index.ts';

/**
 * The page <-> engine Worker message protocol. Every request carries an `id`;
 * the Worker answers it with zero or more `progress` messages and then exactly one `result` or
 * `error`. `cancel` names the request to stop and gets no reply of its own: the cancelled request
 * ends with an `error` whose code is 'cancelled'. `device-lost` is the one unsolicited message.
 * Everything here is structured-clone data: errors travel as ErrorInfo, never as Error objects.
 */

/** One file of a checkpoint folder: `path` relative to the folder ('model-00001-of-00002.safetensors'). */
export interface FileEntry {
  path: string;
  file: File;
  /** Where the file was opened in place (File System Access API): read through, never copied. */
  handle?: FileSystemFileHandle;
}

/** Each request's fields besides `id` and `kind`. */
export interface RequestBodies {
  /** `memoryBudget` caps the bytes the engine may hold on the GPU (default: no cap but the device's). */
  init: { memoryBudget?: number };
  /** `name` is what the card and errors call the checkpoint (the folder name). */
  inspect: { name: string; files: FileEntry[] };
  /** Opens the checkpoint and keeps it in the Worker under `key` (the store's card id). */
  load: { key: string; name: string; files: FileEntry[]; base?: string };
  /** Forgets a checkpoint or a validation text. */
  unload: { key: string };
  /** Every mismatch between the base and each fine-tune (checkCompatibility, one report per model). */
  compat: { base: string; models: string[] };
  /** Tokenizes a validation text with the base's tokenizer and keeps the ids under `key`. */
  tokenize: { key: string; name: string; text: string; base: string };
  /** Merges (resident on the GPU between requests) and measures each validation text's perplexity. */
  evaluate: EvaluateBody;
  /** The memory plan for evaluating a recipe, from the headers alone (nothing is loaded). */
  plan: { recipe: MergeRecipe; context?: number };
  /** Allows compressed (approximate) residency when the exact set does not fit. */
  configure: { compressed: boolean };
  /** Perplexity of one loaded checkpoint itself (no merge) on each validation text. */
  reference: { checkpoint: string; sets: string[]; context?: number };
  /** Parses a task file (JSON Lines) and tokenizes its items with the base's tokenizer; keeps them under `key`. */
  addTask: { key: string; name: string; text: string; base: string };
  /** Task scores of the merge (the same resident merge `evaluate` uses) on each task file. */
  score: ScoreBody;
  /** Task scores of one loaded checkpoint itself (no merge). */
  taskReference: { checkpoint: string; tasks: string[]; context?: number };
  /** Layer-wise ‖θ_i − θ‖ of each fine-tune (DEM Figure 3). */
  layers: { base: string; models: string[] };
  /** Streams the merge (as `dem merge` does) into an HF folder: a directory handle, or a zip returned as a Blob. */
  export: { base: string; recipe: MergeRecipe; target: FileSystemDirectoryHandle | 'zip'; extraFiles: Record<string, string> };
  /** Continuation of `prompt` by the recipe's merge: greedy, or seeded sampling when `sampling.temperature` > 0. */
  generate: { recipe: MergeRecipe; base: string; prompt: string; maxTokens: number; sampling?: GenerateSampling };
}

/** Sampling for `generate` (the engine's defaults when absent: greedy, seed 0). */
export interface GenerateSampling {
  temperature?: number;
  topK?: number;
  seed?: number;
}

/** `recipe.base` and `recipe.models[i].model` are checkpoint keys; the model order is the resident order. */
export interface EvaluateBody {
  recipe: MergeRecipe;
  sets: string[];
  /** Tokens per window; default min(maxPositions, 1024) of the base. */
  context?: number;
  /** Score the exact merge even when the resident set is compressed (before apply/export). */
  exact?: boolean;
}

/** The engine's memory plan, as the studio shows it (engine/workspace/plan.ts). */
export interface PlanResult {
  lines: string[];
  /** Bytes of what will run; undefined when nothing fits. */
  bytes?: number;
  mode?: 'resident' | 'streaming' | 'base';
  /** The chosen way merges on compressed Δ. */
  approximate: boolean;
  refusal?: string;
}

export interface SetPerplexity {
  set: string;
  ppl: number;
  nllMean: number;
  tokens: number;
  predicted: number;
}

export interface EvaluateResult {
  perplexities: SetPerplexity[];
  /** 'resident': base and fine-tunes stayed on the GPU; 'streaming': merged tensor by tensor (memory budget). */
  mode: 'resident' | 'streaming' | 'base';
  /** Set when merged on compressed Δ: the perplexities approximate the exact merge's. */
  approximate?: 'int8' | 'bf16';
  /** The memory plan this request ran under. */
  plan: PlanResult;
  /** One-off set-up of the resident merge in this request (0 when reused). */
  setupMs: number;
  mergeMs: number;
  evalMs: number;
  totalMs: number;
}

export interface ScoreBody {
  recipe: MergeRecipe;
  /** Keys of task files (addTask). */
  tasks: string[];
  context?: number;
}

/** One task's scores (the engine's TaskScore, items included) under its key. */
export type KeyedScore = TaskScore & { task: string };

export interface ScoreResult {
  scores: KeyedScore[];
  mode: 'resident' | 'streaming' | 'base';
  setupMs: number;
  mergeMs: number;
  evalMs: number;
  totalMs: number;
}

export interface ExportResult {
  files: string[];
  bytes: number;
  /** The zip (target 'zip'). */
  zip?: Blob;
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
  load: CheckpointSummary;
  unload: null;
  compat: Record<string, CompatibilityItem[]>;
  tokenize: { tokens: number };
  evaluate: EvaluateResult;
  plan: PlanResult;
  configure: null;
  reference: SetPerplexity[];
  addTask: { kind: TaskKind; items: number };
  score: ScoreResult;
  taskReference: KeyedScore[];
  layers: LayerDistances;
  export: ExportResult;
  generate: { text: string; tokens: number; ms: number };
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
