import type { AdapterSummary, CheckpointSummary, CompatibilityItem, LayerDistances, MergeRecipe, ParamSpec, TaskKind, TrainProgress, TrainSettings } from '../engine/index.ts';
import type { HandleStore } from '../storage/handles.ts';
import type { LocalStore, StorageUsage } from '../storage/local.ts';
import type { EngineApi } from '../worker/client.ts';
import type { ErrorInfo, FileEntry, PlanResult, Progress } from '../worker/protocol.ts';
import type { TrainApi } from '../worker/trainClient.ts';
import type { TrainedFile, TrainStage } from '../worker/trainProtocol.ts';
import type { PersistStorage } from 'zustand/middleware';

/**
 * The studio's state: one zustand store built from typed slices (index.ts). Slices keep
 * flat, prefixed fields so each has its own selector (selectors.ts). Errors are kept as
 * ErrorInfo (plain data) so the state stays serialisable.
 */

export type GpuStatus = 'idle' | 'connecting' | 'ready' | 'unavailable' | 'lost' | 'crashed';

export interface GpuSlice {
  gpuStatus: GpuStatus;
  adapter: AdapterSummary | null;
  gpuError: ErrorInfo | null;
  /** Starts (or, after a crash/device loss, restarts) the engine's GPU device. */
  connectGpu: () => Promise<void>;
}

/** 'mixing': a data-mixing baseline (the base trained on all distributions at once), compared with, never merged. */
export type CheckpointRole = 'base' | 'finetune' | 'mixing';
export type CheckpointStatus = 'inspecting' | 'ready' | 'failed';

export interface CheckpointEntry {
  id: string;
  /** Folder name, or the name given to loose files. */
  name: string;
  role: CheckpointRole;
  status: CheckpointStatus;
  summary: CheckpointSummary | null;
  error: ErrorInfo | null;
  progress: Progress | null;
  /** The files as chosen, kept for later stages (merge, evaluation) that read tensors. */
  files: FileEntry[];
  /** Restored from a previous session but its files could not be read again: choose them again. */
  needsReselect?: boolean;
  /** Has error-level mismatches with the base: listed on the card, left out of the merge. */
  incompatible?: boolean;
  /**
   * A snapshot of a fine-tune still training: shown and mergeable, but neither copied into OPFS
   * nor written to workspace.json (a reload ends the run, so the card would outlive it).
   */
  transient?: boolean;
}

export interface WorkspaceSlice {
  checkpoints: CheckpointEntry[];
  /** Inspects the files in the engine and adds a card; resolves to the entry's id. Never throws. */
  addCheckpoint: (name: string, files: FileEntry[], restore?: { id: string; role: CheckpointRole; transient?: boolean }) => Promise<string>;
  cancelCheckpoint: (id: string) => void;
  removeCheckpoint: (id: string) => void;
  /** At most one base: making one the base turns the previous base into a fine-tune. */
  setRole: (id: string, role: CheckpointRole) => void;
  /** The card `id` reads its files from `to` from now on, if it still has `from` (a stored copy replacing the picked files). */
  replaceCheckpointFiles: (id: string, from: FileEntry[], to: FileEntry[]) => void;
  /** Mismatches of each fine-tune with the base (checkCompatibility), by checkpoint id. */
  compat: Record<string, CompatibilityItem[]>;
  /** After any change of checkpoints or roles: compatibility, tokenization, references, evaluation. */
  refresh: () => void;
}

export type ValidationStatus = 'tokenizing' | 'ready' | 'failed' | 'waiting';

/** One validation set: a text from one data distribution. */
export interface ValidationSet {
  id: string;
  name: string;
  text: string;
  status: ValidationStatus;
  tokens: number | null;
  error: ErrorInfo | null;
}

export interface ValidationSlice {
  validationSets: ValidationSet[];
  /** Adds and tokenizes (with the base's tokenizer) a named text; resolves to its id. */
  addValidationText: (name: string, text: string, restoreId?: string) => Promise<string>;
  removeValidationText: (id: string) => void;
  /** Tokenizes every set again (the base changed). */
  retokenize: () => void;
}

/** A coefficient: one value, or anchors of a curve over depth (a mergekit gradient). */
export interface CoefficientState {
  mode: 'scalar' | 'layers';
  value: number;
  anchors: number[];
}

export interface MethodInfo {
  name: string;
  /** How the picker shows it. */
  label: string;
  description: string;
  reference: string;
  /** Controls besides the per-model weights (λ, normalize, density, gamma, t, seed), as the registry declares them. */
  params: ParamSpec[];
  usesWeights: boolean;
  minModels: number;
  maxModels: number;
}

export interface Timings {
  setupMs: number;
  mergeMs: number;
  evalMs: number;
  totalMs: number;
  /** Page-side: request sent to answer shown. */
  roundTripMs: number;
  mode: 'resident' | 'streaming' | 'base';
}

export interface MergeSlice {
  methods: MethodInfo[];
  method: string;
  /** Values of the method's parameters, by name; absent = the method's default. */
  params: Record<string, number | boolean | string>;
  /** By fine-tune checkpoint id. */
  coefficients: Record<string, CoefficientState>;
  setMethod: (name: string) => void;
  setParam: (name: string, value: number | boolean | string) => void;
  setCoefficient: (id: string, value: number) => void;
  setCoefficientMode: (id: string, mode: CoefficientState['mode']) => void;
  setAnchor: (id: string, index: number, value: number) => void;
  setAnchorCount: (id: string, count: number) => void;
  resetCoefficient: (id: string) => void;
  /** Gives fine-tune `to` the coefficient `from` has (a card replaced by a newer one keeps its slider); no re-measure. */
  copyCoefficient: (from: string, to: string) => void;
  /** Current merge: perplexity by validation-set id. */
  perplexities: Record<string, number>;
  evalStatus: 'idle' | 'running' | 'done' | 'failed';
  evalError: ErrorInfo | null;
  /** Why nothing is measured yet (no base, no text …); null when measuring. */
  evalHint: string | null;
  timings: Timings | null;
  /** Reference perplexities of unmerged checkpoints: `${checkpointId}|${setId}` → ppl. */
  references: Record<string, number>;
  /** Measures the base's and each fine-tune's own perplexity where not known yet. */
  refreshReferences: () => void;
  /**
   * Re-merges and re-measures now; a newer call cancels an older one. `exact`: score the exact
   * merge even when the resident set is compressed (re-scoring before apply/export).
   */
  evaluate: (options?: { exact?: boolean }) => Promise<void>;
  /** The engine's memory plan for the current checkpoints (before they load, and with every measurement). */
  memoryPlan: PlanResult | null;
  /** Compressed residency allowed (opt-in): merges may then run on compressed Δ. */
  compressed: boolean;
  setCompressed: (on: boolean) => void;
  /** Set when the shown perplexities were measured on compressed Δ (approximate). */
  approximate: 'int8' | 'bf16' | null;
}

export type JobKind = 'sweep' | 'heatmap' | 'grid' | 'optimize';

export interface JobState {
  kind: JobKind;
  status: 'running' | 'done' | 'cancelled' | 'failed';
  done: number;
  total: number;
  etaS: number | null;
  startedAt: number;
  error: ErrorInfo | null;
}

/** One evaluated point: coefficients (by `coefIds` order), perplexity and task score by set id. */
export interface SearchRow {
  id: number;
  weights: number[];
  ppls: Record<string, number>;
  /** Weighted mean perplexity (lower is better). */
  objective: number;
  /** Task score (acc or exact match) by set id, for sets with a task file. */
  scores?: Record<string, number>;
  /** Weighted mean task score over the sets with a task file (higher is better). */
  taskObjective?: number;
}

/** What the optimizer minimises and what "best" means in the results: perplexity, or (maximised) task score. */
export type SearchTarget = 'perplexity' | 'task';

export interface SweepResult {
  coefId: string;
  rows: SearchRow[];
}

export interface HeatmapResult {
  xId: string;
  yId: string;
  xs: number[];
  ys: number[];
  rows: SearchRow[];
}

export interface GridConfig {
  /** Per fine-tune: values as text ("0, 0.5, 1") or a step over [min, max]. */
  axes: Record<string, { min: number; max: number; step: number }>;
  sumToOne: boolean;
}

export interface SearchSlice {
  job: JobState | null;
  sweep: SweepResult | null;
  heatmap: HeatmapResult | null;
  /** Search results: grid or optimiser, in evaluation order (the trace). */
  searchRows: SearchRow[];
  searchKind: 'grid' | 'optimize' | null;
  /** Fine-tune ids the rows' weights refer to. */
  searchCoefIds: string[];
  /** Weight of each set in the objective (default 1 = plain average). */
  objectiveWeights: Record<string, number>;
  setObjectiveWeight: (setId: string, weight: number) => void;
  searchTarget: SearchTarget;
  setSearchTarget: (target: SearchTarget) => void;
  runSweep: (coefId: string, from: number, to: number, steps: number) => Promise<void>;
  runHeatmap: (xId: string, yId: string, from: number, to: number, steps: number) => Promise<void>;
  runGrid: (config: GridConfig) => Promise<void>;
  runOptimizer: (budget: number) => Promise<void>;
  cancelJob: () => void;
  applyRow: (row: SearchRow) => void;
}

export type TaskFileStatus = 'waiting' | 'preparing' | 'ready' | 'failed';

/** A task file (JSON Lines) of one distribution, kept beside its validation text and scored after its perplexity. */
export interface TaskFileEntry {
  id: string;
  /** The validation set (distribution) it belongs to; one task file per set. */
  setId: string;
  name: string;
  text: string;
  status: TaskFileStatus;
  kind: TaskKind | null;
  items: number | null;
  error: ErrorInfo | null;
}

/** One model's result on one task file. */
export interface TaskResult {
  kind: TaskKind;
  n: number;
  /** The headline score: acc (multiple choice) or exact match (generative). */
  score: number;
  /** Standard error of `score`. */
  stderr: number;
  /** Multiple choice only. */
  accNorm?: number;
}

export interface TasksSlice {
  taskFiles: TaskFileEntry[];
  /** Adds (replacing the set's previous one) and tokenizes a task file for validation set `setId`; resolves to its id. */
  addTaskFile: (setId: string, name: string, text: string, restoreId?: string) => Promise<string>;
  removeTaskFile: (setId: string) => void;
  /** Tokenizes every task file again (the base changed). */
  retokenizeTasks: () => Promise<void>;
  /** The current merge's task results by validation-set id. */
  taskScores: Record<string, TaskResult>;
  taskStatus: 'idle' | 'running' | 'done' | 'failed';
  taskError: ErrorInfo | null;
  taskMs: number | null;
  /** evaluate() calls this once perplexity is in: the same recipe, the same cancellation. */
  scoreCurrentTasks: (recipe: MergeRecipe, signal: AbortSignal, current: () => boolean) => Promise<void>;
  /** Unmerged checkpoints' scores: `${checkpointId}|${setId}` → headline score. */
  taskReferences: Record<string, number>;
  /** Tokens each checkpoint was trained on from the base (the comparison's costs), by checkpoint id. */
  trainedTokens: Record<string, number>;
  setTrainedTokens: (id: string, tokens: number | null) => void;
  comparisonStatus: 'idle' | 'running' | 'done' | 'failed';
  comparisonError: ErrorInfo | null;
  /** Measures what the DEM-vs-mixing table lacks: task scores of base, mixing and fine-tunes, and of the chosen merge. */
  measureComparison: () => Promise<void>;
}

export interface InsightSlice {
  layers: LayerDistances | null;
  layersStatus: 'idle' | 'running' | 'done' | 'failed';
  analyzeLayers: () => Promise<void>;
  generation: { text: string; tokens: number; ms: number } | null;
  generationStatus: 'idle' | 'running' | 'done' | 'failed';
  generatePreview: (prompt: string, maxTokens: number) => Promise<void>;
  exportStatus: 'idle' | 'running' | 'done' | 'failed';
  exportFiles: string[];
  /** Writes the merged HF folder; 'zip' resolves to the archive (the UI downloads it). */
  exportMerge: (target: FileSystemDirectoryHandle | 'zip') => Promise<Blob | null>;
  /** The current recipe with checkpoint names: {json, yaml}; null when it does not parse (the message says why). */
  /** The recipe as JSON, mergekit YAML and a README.md model card (what an export writes beside the weights). */
  recipeFiles: () => { json: string; yaml: string; card: string } | { error: string };
}

export type NoticeLevel = 'error' | 'warning' | 'info';

export interface Notice {
  id: string;
  level: NoticeLevel;
  title: string;
  message: string;
  file?: string;
  tensor?: string;
}

export interface NotificationsSlice {
  notifications: Notice[];
  notify: (notice: Omit<Notice, 'id'>) => string;
  dismiss: (id: string) => void;
  /** Records a caught failure (errors.ts) and shows it as an error notice titled `title`; returns the record. */
  reportError: (title: string, error: unknown) => ErrorInfo;
}

export type TrainingStatus = 'idle' | 'running' | 'done' | 'failed' | 'cancelled';

export interface LossPoint {
  step: number;
  loss?: number;
  heldOut?: number;
}

export interface TrainingResult {
  name: string;
  files: TrainedFile[];
  checkpointId: string;
  tokensPerSecond: number;
}

/**
 * Fine-tuning the workspace base in the training Worker. While a run goes on, every snapshot is a
 * transient fine-tune card "… (training s/N)" the user can merge with; the finished run replaces
 * it with the final fine-tune; a failed or cancelled run removes it.
 */
export interface TrainingSlice {
  trainStatus: TrainingStatus;
  trainStage: TrainStage | null;
  trainTokens: number | null;
  trainProgress: TrainProgress | null;
  /** Training and held-out loss by step, thinned past a few hundred points. */
  trainCurve: LossPoint[];
  trainError: ErrorInfo | null;
  /** The workspace card that follows the run's snapshots (null before the first one). */
  trainLiveId: string | null;
  trainSnapshotStep: number | null;
  trainResult: TrainingResult | null;
  /** Fine-tunes the workspace base on `text`; the result is named `name`. */
  startTraining: (name: string, text: string, settings: TrainSettings) => void;
  cancelTraining: () => void;
  /** The finished fine-tune as a zip of its folder (`<name>/model.safetensors` …); null before one finished. */
  trainingZip: () => Blob | null;
}

export interface StoredItem {
  kind: 'checkpoint' | 'text';
  /** The workspace id (card or validation set). */
  id: string;
  /** Name in the workspace; null when the workspace no longer has it. */
  name: string | null;
  size: number;
  files: number;
}

export interface MissingItem {
  kind: 'checkpoint' | 'text';
  id: string;
  name: string;
  /** Stored paths that could not be read back. */
  files: string[];
  /** Opened in place: the files are there, the browser needs the user's permission to read them again (grantAccess). */
  permission?: boolean;
}

/** What the studio keeps on this machine (OPFS, storage.ts) and the Storage panel shows. */
export interface StorageSlice {
  /** The workspace is kept in OPFS this session (false: ?fresh, or no OPFS: nothing is kept). */
  storageEnabled: boolean;
  storageUsage: StorageUsage | null;
  storedItems: StoredItem[];
  /** Copies in flight, by checkpoint id: bytes written of total. */
  storageCopying: Record<string, { name: string; written: number; total: number }>;
  /** Checkpoints kept only in memory because they did not fit: id → message. */
  storageNotStored: Record<string, string>;
  /** What a restore could not find in storage. */
  storageMissing: MissingItem[];
  /** Checkpoints opened in place (read through their file handles, not copied): id → name. */
  storageInPlace: Record<string, string>;
  /** Asks the browser again for permission to read a checkpoint opened in place, and reloads it (a click handler: needs the user's gesture). */
  grantAccess: (id: string) => Promise<void>;
  /** True while a workspace.json write is scheduled or running. */
  storageSaving: boolean;
  storageError: string | null;
  refreshStorage: () => Promise<void>;
  /** Removes a stored item; an item still in the workspace leaves the workspace too. */
  removeStored: (item: Pick<StoredItem, 'kind' | 'id'>) => Promise<void>;
  /** Empties the workspace and deletes every stored file. */
  clearStorage: () => Promise<void>;
}

/** What undo/redo restores: the recipe's method, parameters and coefficients. */
export interface RecipeSnapshot {
  method: string;
  params: Record<string, number | boolean | string>;
  coefficients: Record<string, CoefficientState>;
}

export interface HistorySlice {
  /** Recipes before each change, newest last. */
  undoStack: RecipeSnapshot[];
  redoStack: RecipeSnapshot[];
  /** True while undo/redo writes a snapshot (the history watcher skips it). */
  historyApplying: boolean;
  undo: () => void;
  redo: () => void;
  clearHistory: () => void;
  /**
   * Applies a recipe (an imported recipe JSON or mergekit YAML, or the page's URL) to the
   * workspace: method, global parameters and the coefficients of fine-tunes matched by name
   * (or a path's last part). Returns a problem instead of applying part of it.
   */
  applyRecipe: (recipe: MergeRecipe) => { ok: true; unmatched: string[] } | { ok: false; error: string };
}

/** A merge Learn mode measured: weights by distribution id (every distribution), perplexity by distribution id. */
export interface LearnPoint {
  key: string;
  weights: Record<string, number>;
  ppl: Record<string, number>;
  /** Plain mean over the distributions (the objective make-demo and the lesson compare). */
  mean: number;
  /** The engine's time for it (merge + perplexity); 0 when it shares a checkpoint's own perplexity (all ω = 0, or one ω = 1). */
  ms: number;
}

/** A named series of merges (a sweep, a heat map, a grid, an optimiser's trace), in evaluation order. */
export interface LearnRun {
  status: 'running' | 'done' | 'cancelled' | 'failed';
  points: LearnPoint[];
  /** Points planned (a grid) or the evaluation budget (the optimiser). */
  total: number;
  error: ErrorInfo | null;
}

/** The parts of the demo's manifest.json Learn mode reads besides DemoManifest's (what make-demo measured and what training cost). */
export interface LearnManifest {
  distributions: { id: string; title?: string; validation: string; prompt?: string }[];
  checkpoints: { name: string; path: string; role: 'base' | 'fine-tune' | 'mixing'; distribution?: string; seconds?: number; tokensSeen?: number; trainedWith?: string }[];
  model?: { parameters?: number; dtype?: string };
  evaluation?: {
    perplexity?: Record<string, Record<string, number>>;
    merges?: { allOnes?: { weights: Record<string, number>; ppl: Record<string, number>; mean: number }; best?: { weights: Record<string, number>; ppl: Record<string, number>; mean: number } };
    samples?: { settings?: { maxTokens: number; temperature: number; topK: number; seed: number }; prompts?: Record<string, string> };
  };
  /** The DEM-vs-mixing table of scripts/demo/tasks.ts (only what the lesson quotes). */
  tasks?: { table?: { rows: { kind: string; meanScore?: number }[] } };
}

export interface LearnDemoInfo {
  /** In the manifest's order. */
  distributions: { id: string; title: string }[];
  /** Distribution id → the fine-tune card (its distribution vector). */
  vectors: Record<string, string>;
  /** Distribution id → its validation set. */
  sets: Record<string, string>;
  /** The data-mixing baseline's card (role `mixing`), if the demo has one. */
  mixing: string | null;
  manifest: LearnManifest;
}

/** Learn mode (store/learn.ts): merges by distribution weights, measured once each. */
export interface LearnSlice {
  learnDemo: LearnDemoInfo | null;
  learnError: ErrorInfo | null;
  /** Every merge measured so far, by pointKey. */
  learnPoints: Record<string, LearnPoint>;
  /** Merges the engine has measured for Learn mode (each once). */
  learnEvaluations: number;
  learnRuns: Record<string, LearnRun>;
  /** The mixing baseline's perplexity by distribution (measured on demand). */
  learnMixing: Record<string, number> | null;
  learnGenerations: Record<string, { status: 'running' | 'done' | 'failed' | 'cancelled'; text: string }>;
  /** Measures one merge (weights by distribution; absent = 0) unless known; null when it failed (learnError says why). */
  learnMeasure: (weights: Record<string, number>) => Promise<LearnPoint | null>;
  /** Measures `points` in order as run `key` (a newer run cancels an older one). */
  learnRun: (key: string, points: Record<string, number>[]) => Promise<void>;
  /** Nelder–Mead on the mean perplexity from `start`, at most `budget` merges, as run `key`. */
  learnOptimize: (key: string, start: Record<string, number>, budget: number) => Promise<void>;
  learnLoadMixing: () => Promise<void>;
  /** Continues `prompt` with a merge (weights by distribution) or the mixing baseline; kept under `key`. */
  learnGenerate: (key: string, model: Record<string, number> | 'mixing', prompt: string, options: { maxTokens: number; temperature: number; topK: number; seed: number }) => Promise<void>;
  /** Stops every run, measurement and generation in flight. */
  learnCancel: () => void;
}

export type StudioState = GpuSlice &
  HistorySlice &
  WorkspaceSlice &
  ValidationSlice &
  MergeSlice &
  SearchSlice &
  InsightSlice &
  NotificationsSlice &
  TasksSlice &
  TrainingSlice &
  StorageSlice &
  LearnSlice;

/** What slices get besides zustand's set/get: the engine (never the other way round). */
export interface StoreDeps {
  engine: EngineApi;
  /** The training Worker's client; absent = no fine-tuning (a start is refused with a message). */
  train?: TrainApi;
  /**
   * The Origin Private File System (src/storage/local.ts; null when it could not be opened): the
   * workspace and every file the user loads are kept there (storage.ts). Absent = not kept there.
   */
  local?: Promise<LocalStore | null>;
  /** Without `local`: where the workspace survives a reload instead (IndexedDB; tests); absent = not persisted. */
  storage?: PersistStorage<PersistedWorkspace>;
  /** Cap on the engine's GPU memory in bytes (?gpuBudget= in the page). */
  memoryBudget?: number;
  /** Where file handles of checkpoints opened in place are kept (IndexedDB); absent = every checkpoint is copied. */
  handles?: Promise<HandleStore | null>;
  /** Checkpoints with file handles at least this large are opened in place, not copied (default IN_PLACE_BYTES; ?inPlace= in the page). */
  inPlaceBytes?: number;
}

/** The part of the state that survives a reload (Files included: IndexedDB stores them). */
export interface PersistedWorkspace {
  checkpoints: Pick<CheckpointEntry, 'id' | 'name' | 'role' | 'files'>[];
  validationSets: Pick<ValidationSet, 'id' | 'name' | 'text'>[];
  method: string;
  params: Record<string, number | boolean | string>;
  coefficients: Record<string, CoefficientState>;
  objectiveWeights: Record<string, number>;
  searchRows: SearchRow[];
  searchKind: 'grid' | 'optimize' | null;
  searchCoefIds: string[];
  searchTarget?: SearchTarget;
  /** Task files with their text (small: kept inside the workspace record). */
  taskFiles?: Pick<TaskFileEntry, 'id' | 'setId' | 'name' | 'text'>[];
  trainedTokens?: Record<string, number>;
}
