import { layerDistances, type LayerDistances } from '../analysis/index.ts';
import { GpuOutOfMemoryError, InputError, TokenizerError, throwIfAborted } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { openCheckpoint, TOKENIZER_FILE, type Checkpoint } from '../io/checkpoint.ts';
import { checkCompatibility, type CompatibilityItem } from '../io/compat.ts';
import { summarise } from '../io/inspect.ts';
import type { FileSet } from '../io/source.ts';
import type { CheckpointSummary } from '../io/summary.ts';
import { loadTokenizer, type TextTokenizer } from '../io/tokenizer.ts';
import { planMerge, streamMerge, type MergeJob } from '../merge/execute.ts';
import { exportMerged, type ExportOptions, type ExportResult, type FolderSink } from '../merge/export.ts';
import type { MergeRecipe } from '../merge/recipe.ts';
import { DEFAULT_METHOD } from '../merge/registry.ts';
import { ResidentMerge } from '../merge/resident.ts';
import { checkContext, defaultContext, encodeText, evaluateTexts, leadingIds, type EncodedText, type TextPerplexity } from '../model/evaluate.ts';
import { GpuModel } from '../model/forward.ts';
import { generate, type GenerateOptions, type GenerateResult } from '../model/generate.ts';
import { collectMerged, createLoadedModel, uploadCheckpoint, type LoadedModel } from '../model/load.ts';
import { parseTaskFile, type TaskKind } from '../tasks/file.ts';
import { prepareTask, type PreparedTask } from '../tasks/prepare.ts';
import { gpuTaskModel, scoreTask, type TaskScore } from '../tasks/score.ts';

/**
 * The studio's job, in one place: opened checkpoints, encoded validation texts and task files by
 * the host's keys, and from a recipe → merged weights → model → perplexity per text, task scores
 * (or a continuation, or an exported folder). The engine Worker (src/worker/session.ts) and the
 * CLI (src/cli/) are thin adapters over it. A recipe names checkpoints by key; a recipe without
 * models is the base alone.
 *
 * With `resident` (the studio), the base and the packed distribution vectors stay on the GPU
 * between evaluations of the same checkpoints (ResidentMerge), so a slider move costs only the
 * combine kernels and the forward passes; when they do not fit the memory budget, or without
 * `resident` (the CLI's default), each evaluation merges tensor by tensor into fresh weights.
 * Both give the same bits. GPU work is serialised: a request that arrives while another runs
 * waits for it (a cancelled one stops at its next signal check).
 */
export interface WorkspaceOptions {
  /** The live runtime, started on first use. */
  runtime: () => Promise<GpuRuntime>;
  /** Keep base and Δ on the GPU between evaluations (default false). */
  resident?: boolean;
}

/** Progress of long work, by stage: tensors read/merged, then windows scored per text. */
export type WorkspaceProgress =
  | { stage: 'load' | 'merge' | 'resident'; done: number; total: number; tensor: string }
  | { stage: 'ready'; tensors: number; bytes: number }
  | { stage: 'windows'; text: string; index: number; count: number; done: number; total: number }
  | { stage: 'items'; task: string; index: number; count: number; done: number; total: number };

export interface WorkOptions {
  signal?: AbortSignal;
  onProgress?: (p: WorkspaceProgress) => void;
}

export interface EvaluateRequest {
  /** Checkpoints by key; `models: []` evaluates the base itself. */
  recipe: MergeRecipe;
  /** Keys of encoded texts (addText), tokenized with this recipe's base. */
  texts: readonly string[];
  /** Tokens per window; default min(maxPositions, 1024) of the base. */
  context?: number;
  /** Windows per GPU dispatch (default 8). */
  batchWindows?: number;
}

export interface TextScore extends TextPerplexity {
  /** The text's key. */
  key: string;
}

export interface Evaluation {
  texts: TextScore[];
  /** 'resident': base and Δ stayed on the GPU; 'streaming': merged tensor by tensor; 'base': nothing to merge. */
  mode: 'resident' | 'streaming' | 'base';
  /** One-off set-up of the resident merge in this request (0 when reused). */
  setupMs: number;
  mergeMs: number;
  evalMs: number;
  totalMs: number;
}

export interface TaskRequest {
  /** Checkpoints by key; `models: []` scores the base itself. */
  recipe: MergeRecipe;
  /** Keys of task files (addTask), tokenized with this recipe's base. */
  tasks: readonly string[];
  /** Tokens the model sees at most; default min(maxPositions, 1024) of the base. */
  context?: number;
  /** Spans per GPU dispatch (default 8). */
  batchWindows?: number;
  /** Most new tokens per generative item (default 32). */
  maxTokens?: number;
}

export type KeyedTaskScore = TaskScore & { key: string };

export interface TaskEvaluation {
  tasks: KeyedTaskScore[];
  mode: Evaluation['mode'];
  setupMs: number;
  mergeMs: number;
  evalMs: number;
  totalMs: number;
}

export interface GenerateRequest extends Omit<GenerateOptions, 'signal' | 'stopTokens'> {
  recipe: MergeRecipe;
  prompt: string;
  /** Keep going past the model's EOS token. */
  ignoreEos?: boolean;
}

export interface Generation extends GenerateResult {
  /** The prompt's token ids, after the tokenizer's BOS when it adds one (the model's BOS alone for an empty prompt). */
  promptIds: number[];
  /** The decoded new tokens. */
  text: string;
  ms: number;
}

interface Text extends EncodedText {
  /** Key of the checkpoint whose tokenizer encoded it. */
  base: string;
}

interface Task {
  label: string;
  /** Key of the checkpoint whose tokenizer prepared it. */
  base: string;
  prepared: PreparedTask;
}

/** What withModel returns: its callback's value, how the model was made, and the timings. */
interface Scored<T> {
  value: T;
  mode: Evaluation['mode'];
  setupMs: number;
  mergeMs: number;
  evalMs: number;
  totalMs: number;
}

interface Resident {
  rt: GpuRuntime;
  key: string;
  merge: ResidentMerge;
  model: GpuModel | undefined;
  /** The buffers the model was built on: rebuilt when the merge's outputs change (output dtype). */
  built: Map<string, GPUBuffer>;
}

export class Workspace {
  private readonly checkpoints = new Map<string, Checkpoint>();
  private readonly tokenizers = new Map<string, Promise<TextTokenizer>>();
  private readonly texts = new Map<string, Text>();
  private readonly tasks = new Map<string, Task>();
  private resident: Resident | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: WorkspaceOptions) {}

  /** Opens a checkpoint folder (headers only) and keeps it under `key`, replacing what was there. */
  async open(key: string, name: string, files: FileSet, options: WorkOptions = {}): Promise<CheckpointSummary> {
    const ckpt = await openCheckpoint(files, name, { signal: options.signal });
    this.forget(key);
    this.checkpoints.set(key, ckpt);
    return summarise(ckpt);
  }

  /** Forgets a checkpoint, a text or a task file. */
  close(key: string): void {
    this.forget(key);
    this.texts.delete(key);
    this.tasks.delete(key);
  }

  checkpoint(key: string): Checkpoint {
    const c = this.checkpoints.get(key);
    if (!c) throw new InputError(`checkpoint '${key}' is not loaded in the engine (add it again)`);
    return c;
  }

  /** Every mismatch between the base and each model, one report per model. */
  compat(base: string, models: readonly string[]): Record<string, CompatibilityItem[]> {
    const b = this.checkpoint(base);
    const out: Record<string, CompatibilityItem[]> = {};
    for (const key of models) out[key] = checkCompatibility(b, [this.checkpoint(key)]).items;
    return out;
  }

  /** Encodes a validation text with `base`'s tokenizer (and notes its BOS, if any) and keeps it under `key`. */
  async addText(key: string, label: string, text: string, base: string): Promise<{ tokens: number }> {
    const tokenizer = await this.tokenizer(base);
    const ids = encodeText(tokenizer, label, text);
    this.texts.set(key, { label, base, ids, ...(tokenizer.bos === undefined ? {} : { bos: tokenizer.bos }) });
    return { tokens: ids.length };
  }

  /**
   * Parses a task file (JSON Lines: tasks/file.ts) and tokenizes its items with `base`'s
   * tokenizer, keeping them under `key`; a bad line is an InputError naming `label` and the line.
   */
  async addTask(key: string, label: string, text: string, base: string): Promise<{ kind: TaskKind; items: number }> {
    const file = parseTaskFile(text, label);
    const tokenizer = await this.tokenizer(base);
    const prepared = prepareTask(tokenizer, file, leadingIds(tokenizer));
    this.tasks.set(key, { label, base, prepared });
    return { kind: prepared.kind, items: prepared.items.length };
  }

  /** Perplexity of the recipe's merge (or of its base alone) on each text. */
  evaluate(request: EvaluateRequest, options: WorkOptions = {}): Promise<Evaluation> {
    return this.serial(() => this.run(request, request.recipe.base, options));
  }

  /**
   * Task scores of the recipe's merge (or of its base alone): the same model evaluate() builds —
   * with `resident`, the resident merge re-combined for this recipe, so scores after a slider
   * move cost the combine kernels and the forward passes.
   */
  scoreTasks(request: TaskRequest, options: WorkOptions = {}): Promise<TaskEvaluation> {
    return this.serial(() => this.score(request, request.recipe.base, options));
  }

  /** One checkpoint's own task scores (no merge), for tasks prepared with another checkpoint's tokenizer. */
  referenceTasks(key: string, tasks: readonly string[], options: WorkOptions & Omit<TaskRequest, 'recipe' | 'tasks'> = {}): Promise<TaskEvaluation> {
    const recipe: MergeRecipe = { version: 1, method: DEFAULT_METHOD, base: key, models: [], parameters: {} };
    return this.serial(() => this.score({ ...options, recipe, tasks }, undefined, options));
  }

  /**
   * One checkpoint's own perplexity (no merge) on texts encoded with another checkpoint's
   * tokenizer: the studio's reference marks for the base and each fine-tune.
   */
  reference(key: string, texts: readonly string[], context: number | undefined, options: WorkOptions = {}): Promise<Evaluation> {
    const recipe: MergeRecipe = { version: 1, method: DEFAULT_METHOD, base: key, models: [], parameters: {} };
    return this.serial(() => this.run({ recipe, texts, context }, undefined, options));
  }

  /** `textsFrom`: the checkpoint whose tokenizer must have encoded the texts (undefined: any). */
  private async run(request: EvaluateRequest, textsFrom: string | undefined, options: WorkOptions): Promise<Evaluation> {
    throwIfAborted(options.signal);
    const texts = request.texts.map((k) => this.text(k, textsFrom));
    const r = await this.withModel(
      request.recipe,
      request.context,
      request.batchWindows,
      options,
      (scorer, context) =>
        evaluateTexts(scorer, texts, {
          context,
          batchWindows: request.batchWindows,
          signal: options.signal,
          onProgress: (p) => options.onProgress?.({ stage: 'windows', text: p.label, index: p.index, count: p.count, done: p.done, total: p.total }),
        }),
      texts.some((t) => t.bos !== undefined),
    );
    return { texts: r.value.map((s, i) => ({ ...s, key: request.texts[i]! })), mode: r.mode, setupMs: r.setupMs, mergeMs: r.mergeMs, evalMs: r.evalMs, totalMs: r.totalMs };
  }

  /** `tasksFrom`: the checkpoint whose tokenizer must have prepared the tasks (undefined: any). */
  private async score(request: TaskRequest, tasksFrom: string | undefined, options: WorkOptions): Promise<TaskEvaluation> {
    throwIfAborted(options.signal);
    const tasks = request.tasks.map((k) => this.task(k, tasksFrom));
    const tokenizers = await Promise.all(tasks.map((t) => this.tokenizer(t.base)));
    const eos = this.checkpoint(request.recipe.base).spec.eosTokenId;
    const r = await this.withModel(request.recipe, request.context, request.batchWindows, options, async (model, context) => {
      const out: KeyedTaskScore[] = [];
      for (const [index, t] of tasks.entries()) {
        const s = await scoreTask(gpuTaskModel(model), tokenizers[index]!, t.prepared, {
          context,
          maxTokens: request.maxTokens,
          batchItems: request.batchWindows,
          stopTokens: eos === undefined ? [] : [eos],
          signal: options.signal,
          onProgress: (done, total) => options.onProgress?.({ stage: 'items', task: t.label, index, count: tasks.length, done, total }),
        });
        out.push({ ...s, key: request.tasks[index]! });
      }
      return out;
    });
    return { tasks: r.value, mode: r.mode, setupMs: r.setupMs, mergeMs: r.mergeMs, evalMs: r.evalMs, totalMs: r.totalMs };
  }

  /**
   * The recipe's model — the resident merge re-combined (when asked for and when it fits), else
   * fresh weights merged tensor by tensor (or the base uploaded) — handed to `use` with the
   * checked context; fresh weights are freed afterwards.
   */
  private async withModel<T>(
    recipe: MergeRecipe,
    contextArg: number | undefined,
    batchWindows: number | undefined,
    options: WorkOptions,
    use: (model: GpuModel, context: number) => Promise<T>,
    bos = false,
  ): Promise<Scored<T>> {
    const t0 = performance.now();
    const { signal } = options;
    const base = this.checkpoint(recipe.base);
    const models = recipe.models.map((m) => this.checkpoint(m.model));
    // With a BOS before each perplexity window, the model sees context + 1 positions.
    const context = checkContext(base.spec, contextArg ?? defaultContext(base.spec, bos), bos);
    const positions = context + (bos ? 1 : 0);
    const rt = await this.options.runtime();
    let setupMs = 0;
    let mergeMs = 0;
    let mode: Evaluation['mode'];
    let scorer: GpuModel;
    let temporary: LoadedModel | undefined;
    const resident = this.options.resident && models.length > 0 ? await this.tryResident(rt, recipe, base, models, options) : undefined;
    const m0 = performance.now();
    if (resident) {
      setupMs = resident.setupMs;
      const weights = await resident.r.merge.merge(recipe, { signal });
      await rt.flush();
      mergeMs = performance.now() - m0;
      const r = resident.r;
      if (!r.model || r.model.maxContext < positions || [...r.built].some(([name, buffer]) => weights.get(name)?.buffer !== buffer)) {
        r.model?.destroy();
        r.model = await GpuModel.create(rt, base.spec, weights, { maxContext: positions, maxBatch: batchWindows });
        r.built = new Map([...weights].map(([n, t]) => [n, t.buffer]));
      }
      scorer = r.model;
      mode = 'resident';
      options.onProgress?.({ stage: 'ready', tensors: weights.size, bytes: r.merge.memory.bytes });
    } else {
      temporary = await this.fresh(rt, recipe, positions, batchWindows, options);
      mergeMs = performance.now() - m0;
      scorer = temporary.model;
      mode = models.length === 0 ? 'base' : 'streaming';
    }
    const e0 = performance.now();
    try {
      const value = await use(scorer, context);
      return { value, mode, setupMs, mergeMs, evalMs: performance.now() - e0, totalMs: performance.now() - t0 };
    } finally {
      temporary?.destroy();
    }
  }

  /**
   * The recipe's model on the GPU, merged tensor by tensor (or the base uploaded), for callers
   * that score it many times themselves (benchmarks, task evaluation); destroy() frees it.
   */
  load(recipe: MergeRecipe, options: WorkOptions & { context?: number; batchWindows?: number } = {}): Promise<LoadedModel> {
    return this.serial(async () => {
      const base = this.checkpoint(recipe.base);
      const context = checkContext(base.spec, options.context ?? defaultContext(base.spec));
      const rt = await this.options.runtime();
      return this.fresh(rt, recipe, context, options.batchWindows, options);
    });
  }

  /** Layer-wise ‖θ_i − θ‖ of each model (DEM Figure 3); CPU, one tensor at a time. */
  layers(base: string, models: readonly string[], options: WorkOptions = {}): Promise<LayerDistances> {
    return layerDistances(this.checkpoint(base), models.map((k) => this.checkpoint(k)), { signal: options.signal });
  }

  /** Continues `prompt` with the recipe's merge (or its base): greedy, or seeded sampling. */
  generate(request: GenerateRequest, options: WorkOptions & { onToken?: (id: number, index: number) => void } = {}): Promise<Generation> {
    return this.serial(async () => {
      const t0 = performance.now();
      const { recipe, prompt, ignoreEos, ...sampling } = request;
      const { signal } = options;
      const base = this.checkpoint(recipe.base);
      const tokenizer = await this.tokenizer(recipe.base);
      // As transformers' tokenizer encodes a prompt: its BOS first when it adds one.
      let promptIds = tokenizer.bos === undefined ? tokenizer.encode(prompt) : [tokenizer.bos, ...tokenizer.encode(prompt)];
      if (promptIds.length === 0) {
        if (base.spec.bosTokenId === undefined) throw new InputError('the prompt has 0 tokens and the model has no bos_token_id to start from');
        promptIds = [base.spec.bosTokenId];
      }
      const rt = await this.options.runtime();
      const loaded = await this.fresh(rt, recipe, undefined, undefined, options);
      try {
        const eos = base.spec.eosTokenId;
        const out = await generate(loaded.model, promptIds, {
          ...sampling,
          signal,
          stopTokens: ignoreEos || eos === undefined ? [] : [eos],
          onToken: options.onToken,
        });
        return { ...out, promptIds, text: out.ids.length ? tokenizer.decode(out.ids) : '', ms: performance.now() - t0 };
      } finally {
        loaded.destroy();
      }
    });
  }

  /** Streams the recipe's merge into an HF folder (shards + index when large, config, tokenizer, extra files). */
  exportMerge(recipe: MergeRecipe, sink: FolderSink, options: WorkOptions & Omit<ExportOptions, 'signal'> = {}): Promise<ExportResult> {
    return this.serial(async () => {
      const job = this.job(recipe);
      const rt = await this.options.runtime();
      const stream = streamMerge(rt, job, { output: 'bytes', signal: options.signal, onProgress: (p) => options.onProgress?.({ stage: 'merge', ...p }) });
      return exportMerged(sink, job.base, planMerge(job), stream, options);
    });
  }

  /** Fresh weights for the recipe (the base uploaded, or the merge streamed) and a model over them. */
  private async fresh(rt: GpuRuntime, recipe: MergeRecipe, context: number | undefined, maxBatch: number | undefined, options: WorkOptions): Promise<LoadedModel> {
    const { signal } = options;
    const base = this.checkpoint(recipe.base);
    const weights = recipe.models.length === 0
      ? await uploadCheckpoint(rt, base, { signal, onProgress: (p) => options.onProgress?.({ stage: 'load', ...p }) })
      : await collectMerged(rt, base.spec, streamMerge(rt, this.job(recipe), { output: 'gpu', signal, onProgress: (p) => options.onProgress?.({ stage: 'merge', ...p }) }), { signal });
    options.onProgress?.({ stage: 'ready', tensors: weights.tensors.size, bytes: weights.bytes });
    return createLoadedModel(rt, weights, { maxContext: context, maxBatch });
  }

  /** The checkpoints a recipe names, opened (keys → Checkpoints). */
  job(recipe: MergeRecipe): MergeJob {
    return { recipe, base: this.checkpoint(recipe.base), models: recipe.models.map((m) => this.checkpoint(m.model)) };
  }

  /** The tokenizer of checkpoint `key` (its tokenizer.json, BOS from tokenizer_config.json), loaded once. */
  tokenizer(key: string): Promise<TextTokenizer> {
    let t = this.tokenizers.get(key);
    if (!t) {
      const ckpt = this.checkpoint(key);
      if (ckpt.tokenizerJson === undefined) {
        throw new TokenizerError(`missing in '${ckpt.name}': perplexity and generation need the model's tokenizer`, { file: TOKENIZER_FILE });
      }
      t = loadTokenizer(ckpt.tokenizerJson, `${ckpt.name}/${TOKENIZER_FILE}`, ckpt.tokenizerConfig);
      t.catch(() => this.tokenizers.delete(key));
      this.tokenizers.set(key, t);
    }
    return t;
  }

  /** Drops GPU state (the device was lost or replaced); checkpoints and texts stay. */
  reset(): void {
    this.dropResident();
  }

  /**
   * The resident merge for these checkpoints (created on first use, reused after), or undefined
   * when it does not fit the memory budget: the caller then streams.
   */
  private async tryResident(rt: GpuRuntime, recipe: MergeRecipe, base: Checkpoint, models: Checkpoint[], options: WorkOptions): Promise<{ r: Resident; setupMs: number } | undefined> {
    const key = [recipe.base, ...recipe.models.map((m) => m.model)].join('|');
    if (this.resident && this.resident.key === key && this.resident.rt === rt) return { r: this.resident, setupMs: 0 };
    this.dropResident();
    const s0 = performance.now();
    let merge: ResidentMerge;
    try {
      merge = await ResidentMerge.create(rt, base, models, { signal: options.signal, onProgress: (p) => options.onProgress?.({ stage: 'resident', ...p }) });
    } catch (error) {
      if (error instanceof GpuOutOfMemoryError) return undefined;
      throw error;
    }
    this.resident = { rt, key, merge, model: undefined, built: new Map() };
    return { r: this.resident, setupMs: performance.now() - s0 };
  }

  private dropResident(): void {
    if (!this.resident) return;
    this.resident.model?.destroy();
    this.resident.merge.destroy();
    this.resident = undefined;
  }

  private forget(key: string): void {
    if (this.checkpoints.delete(key)) {
      this.tokenizers.delete(key);
      // The resident merge may hold this checkpoint.
      if (this.resident?.key.split('|').includes(key)) this.dropResident();
    }
  }

  private text(key: string, base: string | undefined): Text {
    const t = this.texts.get(key);
    if (!t) throw new InputError(`validation text '${key}' is not tokenized (add it again)`);
    if (base !== undefined && t.base !== base) throw new InputError(`validation text '${t.label}' was tokenized with another base's tokenizer; re-add it`, { file: t.label });
    return t;
  }

  private task(key: string, base: string | undefined): Task {
    const t = this.tasks.get(key);
    if (!t) throw new InputError(`task file '${key}' is not loaded (add it again)`);
    if (base !== undefined && t.base !== base) throw new InputError(`task file '${t.label}' was tokenized with another base's tokenizer; re-add it`, { file: t.label });
    return t;
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
