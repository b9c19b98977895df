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
import { ResidentMerge, type Residency } from '../merge/resident.ts';
import { checkContext, defaultContext, encodeText, evaluateTexts, type EncodedText, type TextPerplexity } from '../model/evaluate.ts';
import { GpuModel } from '../model/forward.ts';
import { generate, type GenerateOptions, type GenerateResult } from '../model/generate.ts';
import { collectMerged, createLoadedModel, uploadCheckpoint, type LoadedModel } from '../model/load.ts';
import { checkPlan, planMemory, type MemoryPlan } from './plan.ts';

/**
 * The studio's job, in one place: opened checkpoints and encoded validation texts by the host's
 * keys, and from a recipe → merged weights → model → perplexity per text (or a continuation, or
 * an exported folder). The engine Worker (src/worker/session.ts) and the CLI (src/cli/) are thin
 * adapters over it. A recipe names checkpoints by key; a recipe without models is the base alone.
 *
 * With `resident` (the studio), the base and the fine-tunes stay on the GPU in their stored
 * dtypes between evaluations of the same checkpoints (ResidentMerge), so a slider move costs only
 * the merge kernels and the forward passes; without `resident` (the CLI's default) each
 * evaluation merges tensor by tensor into fresh weights. Both give the same bits. Before loading
 * anything, a memory plan (plan.ts) from the headers decides which fits the budget — exact
 * resident, compressed resident (only with `compressed`: approximate, labelled), or streamed —
 * and refuses with the shortfall named when none does. GPU work is serialised: a request that
 * arrives while another runs waits for it (a cancelled one stops at its next signal check).
 */
export interface WorkspaceOptions {
  /** The live runtime, started on first use. */
  runtime: () => Promise<GpuRuntime>;
  /** Keep base and fine-tunes on the GPU between evaluations (default false). */
  resident?: boolean;
  /** Allow compressed Δ residency when the exact set does not fit (approximate; default false). */
  compressed?: boolean;
}

/** Progress of long work, by stage: tensors read/merged, then windows scored per text. */
export type WorkspaceProgress =
  | { stage: 'plan'; plan: MemoryPlan }
  | { stage: 'load' | 'merge' | 'resident'; done: number; total: number; tensor: string }
  | { stage: 'ready'; tensors: number; bytes: number }
  | { stage: 'windows'; text: string; index: number; count: number; done: number; total: number };

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
  /** Score the exact merge even when the resident set is compressed (re-scoring before apply/export). */
  exact?: boolean;
}

export interface TextScore extends TextPerplexity {
  /** The text's key. */
  key: string;
}

export interface Evaluation {
  texts: TextScore[];
  /** 'resident': base and fine-tunes stayed on the GPU; 'streaming': merged tensor by tensor; 'base': nothing to merge. */
  mode: 'resident' | 'streaming' | 'base';
  /** Set when the merge ran on compressed Δ: the numbers approximate the exact merge's. */
  approximate?: Exclude<Residency, 'exact'>;
  /** What the plan said before this request loaded anything. */
  plan: MemoryPlan;
  /** One-off set-up of the resident merge in this request (0 when reused). */
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
  /** The prompt's token ids (the model's BOS alone for an empty prompt). */
  promptIds: number[];
  /** The decoded new tokens. */
  text: string;
  ms: number;
}

interface Text extends EncodedText {
  /** Key of the checkpoint whose tokenizer encoded it. */
  base: string;
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
  private resident: Resident | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: WorkspaceOptions) {}

  /** Allows (or forbids) compressed residency from the next evaluation on. */
  setCompressed(on: boolean): void {
    this.options.compressed = on;
  }

  /**
   * The memory plan for a request (evaluate, or export with `use`), from the headers alone:
   * starts the runtime (for its limits and budget), loads nothing.
   */
  async plan(request: Pick<EvaluateRequest, 'recipe' | 'context' | 'batchWindows' | 'exact'> & { use?: 'evaluate' | 'export' }): Promise<MemoryPlan> {
    const rt = await this.options.runtime();
    return this.planFor(rt, request, request.use ?? 'evaluate');
  }

  private planFor(rt: GpuRuntime, request: Pick<EvaluateRequest, 'recipe' | 'context' | 'batchWindows' | 'exact'>, use: 'evaluate' | 'export'): MemoryPlan {
    const { recipe } = request;
    const base = this.checkpoint(recipe.base);
    const models = recipe.models.map((m) => this.checkpoint(m.model));
    const key = this.residentKey(recipe);
    // Memory the resident merge holds comes back when this request replaces it.
    const reusable = this.resident && this.resident.key !== key && use === 'evaluate' && this.options.resident && models.length > 0 ? this.resident.merge.memory.bytes : 0;
    return planMemory({
      base,
      models,
      recipe,
      context: use === 'evaluate' ? checkContext(base.spec, request.context ?? defaultContext(base.spec)) : undefined,
      batch: request.batchWindows,
      use,
      resident: (this.options.resident ?? false) && !(request.exact && this.options.compressed),
      compressed: (this.options.compressed ?? false) && !request.exact,
      limits: rt.limits,
      budget: rt.memory.budget - rt.memory.live + reusable,
    });
  }

  private residentKey(recipe: MergeRecipe): string {
    return [recipe.base, ...recipe.models.map((m) => m.model)].join('|');
  }

  /** Opens a checkpoint folder (headers only) and keeps it under `key`, replacing what was there. */
  async open(key: string, name: string, files: FileSet, options: WorkOptions = {}): Promise<CheckpointSummary> {
    const ckpt = await openCheckpoint(files, name, { signal: options.signal });
    this.forget(key);
    this.checkpoints.set(key, ckpt);
    return summarise(ckpt);
  }

  /** Forgets a checkpoint or a text. */
  close(key: string): void {
    this.forget(key);
    this.texts.delete(key);
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

  /** Encodes a validation text with `base`'s tokenizer and keeps it under `key`. */
  async addText(key: string, label: string, text: string, base: string): Promise<{ tokens: number }> {
    const ids = encodeText(await this.tokenizer(base), label, text);
    this.texts.set(key, { label, base, ids });
    return { tokens: ids.length };
  }

  /** Perplexity of the recipe's merge (or of its base alone) on each text. */
  evaluate(request: EvaluateRequest, options: WorkOptions = {}): Promise<Evaluation> {
    return this.serial(() => this.run(request, request.recipe.base, options));
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
    const t0 = performance.now();
    const { signal } = options;
    throwIfAborted(signal);
    const { recipe } = request;
    const base = this.checkpoint(recipe.base);
    const models = recipe.models.map((m) => this.checkpoint(m.model));
    const context = checkContext(base.spec, request.context ?? defaultContext(base.spec));
    const texts = request.texts.map((k) => this.text(k, textsFrom));
    const rt = await this.options.runtime();
    let setupMs = 0;
    let mergeMs = 0;
    let mode: Evaluation['mode'];
    let scorer: GpuModel;
    let temporary: LoadedModel | undefined;
    const key = this.residentKey(recipe);
    const wantsResident = this.options.resident && models.length > 0;
    const reuse = wantsResident && this.resident?.key === key && this.resident.rt === rt && !(request.exact && this.resident.merge.approximate);
    const plan = this.planFor(rt, request, 'evaluate');
    options.onProgress?.({ stage: 'plan', plan });
    const choice = reuse ? undefined : checkPlan(plan);
    // The resident set of other checkpoints goes (the plan counted its memory as free).
    if (wantsResident && !reuse) this.dropResident();
    const resident = reuse || choice?.mode === 'resident' ? await this.tryResident(rt, recipe, base, models, choice?.residency ?? this.resident!.merge.residency, options) : undefined;
    const m0 = performance.now();
    if (resident) {
      setupMs = resident.setupMs;
      const weights = await resident.r.merge.merge(recipe, { signal });
      await rt.flush();
      mergeMs = performance.now() - m0;
      const r = resident.r;
      if (!r.model || r.model.maxContext < context || [...r.built].some(([name, buffer]) => weights.get(name)?.buffer !== buffer)) {
        r.model?.destroy();
        r.model = await GpuModel.create(rt, base.spec, weights, { maxContext: context, maxBatch: request.batchWindows });
        r.built = new Map([...weights].map(([n, t]) => [n, t.buffer]));
      }
      scorer = r.model;
      mode = 'resident';
      options.onProgress?.({ stage: 'ready', tensors: weights.size, bytes: r.merge.memory.bytes });
    } else {
      temporary = await this.fresh(rt, recipe, context, request.batchWindows, options);
      mergeMs = performance.now() - m0;
      scorer = temporary.model;
      mode = models.length === 0 ? 'base' : 'streaming';
    }
    const residency = resident?.r.merge.residency;
    const approximate = residency === 'int8' || residency === 'bf16' ? residency : undefined;
    const e0 = performance.now();
    try {
      const scores = await evaluateTexts(scorer, texts, {
        context,
        batchWindows: request.batchWindows,
        signal,
        onProgress: (p) => options.onProgress?.({ stage: 'windows', text: p.label, index: p.index, count: p.count, done: p.done, total: p.total }),
      });
      const evalMs = performance.now() - e0;
      return { texts: scores.map((s, i) => ({ ...s, key: request.texts[i]! })), mode, ...(approximate ? { approximate } : {}), plan, setupMs, mergeMs, evalMs, totalMs: performance.now() - t0 };
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
      let promptIds = tokenizer.encode(prompt);
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
      const plan = this.planFor(rt, { recipe }, 'export');
      options.onProgress?.({ stage: 'plan', plan });
      checkPlan(plan);
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

  /** The tokenizer of checkpoint `key` (its tokenizer.json), loaded once. */
  tokenizer(key: string): Promise<TextTokenizer> {
    let t = this.tokenizers.get(key);
    if (!t) {
      const ckpt = this.checkpoint(key);
      if (ckpt.tokenizerJson === undefined) {
        throw new TokenizerError(`missing in '${ckpt.name}': perplexity and generation need the model's tokenizer`, { file: TOKENIZER_FILE });
      }
      t = loadTokenizer(ckpt.tokenizerJson, `${ckpt.name}/${TOKENIZER_FILE}`);
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
   * The resident merge for these checkpoints in `residency` (created on first use, reused after),
   * or undefined when it does not fit the memory budget after all: the caller then streams.
   */
  private async tryResident(rt: GpuRuntime, recipe: MergeRecipe, base: Checkpoint, models: Checkpoint[], residency: Residency, options: WorkOptions): Promise<{ r: Resident; setupMs: number } | undefined> {
    const key = this.residentKey(recipe);
    if (this.resident && this.resident.key === key && this.resident.rt === rt && this.resident.merge.residency === residency) return { r: this.resident, setupMs: 0 };
    this.dropResident();
    const s0 = performance.now();
    let merge: ResidentMerge;
    try {
      merge = await ResidentMerge.create(rt, base, models, { residency, signal: options.signal, onProgress: (p) => options.onProgress?.({ stage: 'resident', ...p }) });
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

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
