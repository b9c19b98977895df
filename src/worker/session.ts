import {
  GpuOutOfMemoryError,
  InputError,
  ResidentMerge,
  ZipWriter,
  throwIfAborted,
  type Checkpoint,
  type CompatibilityItem,
  type FileSet,
  type GpuRuntime,
  type GpuTensor,
  type LayerDistances,
  type LoadedModel,
  type MergeRecipe,
  type TextTokenizer,
  checkCompatibility,
  checkContext,
  collectMerged,
  createLoadedModel,
  defaultContext,
  generate,
  layerDistances,
  loadTokenizer,
  openCheckpoint,
  perplexity,
  summarise,
  streamMerge,
  planMerge,
  exportMerged,
  uploadCheckpoint,
  GpuModel,
  type CheckpointSummary,
  type FolderSink,
} from '../engine/index.ts';
import type { EvaluateBody, EvaluateResult, ExportResult, SetPerplexity } from './protocol.ts';

/**
 * The studio's working set inside the Worker: opened checkpoints and tokenized validation texts by
 * the store's keys, and the resident merge (base + packed Δ on the GPU, ResidentMerge) with the
 * GpuModel that reads its outputs, kept between requests so a slider move costs only the combine
 * kernels and the forward passes. GPU work is serialised: a request that arrives while another
 * runs waits for it (a cancelled one stops at its next signal check).
 */
export interface SessionDeps {
  /** The live runtime, starting the device if needed. */
  runtime: () => Promise<GpuRuntime>;
}

interface Resident {
  rt: GpuRuntime;
  key: string;
  merge: ResidentMerge;
  model: GpuModel | undefined;
  /** The buffers the model was built on: rebuilt when the merge's outputs change (output dtype). */
  built: Map<string, GPUBuffer>;
}

interface Text {
  name: string;
  base: string;
  ids: number[];
}

export class WorkspaceSession {
  private readonly checkpoints = new Map<string, Checkpoint>();
  private readonly tokenizers = new Map<string, Promise<TextTokenizer>>();
  private readonly texts = new Map<string, Text>();
  private resident: Resident | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: SessionDeps) {}

  async load(key: string, name: string, files: FileSet, signal: AbortSignal): Promise<CheckpointSummary> {
    const ckpt = await openCheckpoint(files, name, { signal });
    this.forget(key);
    this.checkpoints.set(key, ckpt);
    return summarise(ckpt);
  }

  unload(key: string): null {
    this.forget(key);
    this.texts.delete(key);
    return null;
  }

  compat(base: string, models: readonly string[]): Record<string, CompatibilityItem[]> {
    const b = this.checkpoint(base);
    const out: Record<string, CompatibilityItem[]> = {};
    for (const key of models) out[key] = checkCompatibility(b, [this.checkpoint(key)]).items;
    return out;
  }

  async tokenize(key: string, name: string, text: string, base: string): Promise<{ tokens: number }> {
    if (text.trim() === '') throw new InputError('the text is empty: paste some text or choose a non-empty .txt file', { file: name });
    const tokenizer = await this.tokenizer(base);
    const ids = tokenizer.encode(text);
    if (ids.length < 2) throw new InputError(`has ${ids.length} token${ids.length === 1 ? '' : 's'}; perplexity needs at least 2`, { file: name });
    this.texts.set(key, { name, base, ids });
    return { tokens: ids.length };
  }

  evaluate(body: EvaluateBody, signal: AbortSignal): Promise<EvaluateResult> {
    return this.serial(async () => {
      const t0 = performance.now();
      throwIfAborted(signal);
      const rt = await this.deps.runtime();
      const recipe = body.recipe;
      const base = this.checkpoint(recipe.base);
      const models = recipe.models.map((m) => this.checkpoint(m.model));
      const context = checkContext(base.spec, body.context ?? defaultContext(base.spec));
      const sets = body.sets.map((k) => this.text(k, recipe.base));
      let setupMs = 0;
      let mergeMs = 0;
      let mode: EvaluateResult['mode'];
      let scorer: GpuModel;
      let temporary: LoadedModel | undefined;
      if (models.length === 0) {
        // Nothing to merge: the base itself.
        temporary = await createLoadedModel(rt, await uploadCheckpoint(rt, base, { signal }), { maxContext: context });
        scorer = temporary.model;
        mode = 'base';
      } else {
        const key = [recipe.base, ...recipe.models.map((m) => m.model)].join('|');
        let resident: Resident | undefined;
        const s0 = performance.now();
        try {
          resident = await this.residentFor(rt, key, base, models, signal);
        } catch (error) {
          if (!(error instanceof GpuOutOfMemoryError)) throw error;
        }
        setupMs = resident && this.resident === resident && resident.model ? 0 : performance.now() - s0;
        const m0 = performance.now();
        if (resident) {
          const weights = await resident.merge.merge(recipe, { signal });
          await rt.flush();
          mergeMs = performance.now() - m0;
          const changed = !resident.model || [...resident.built].some(([name, buffer]) => weights.get(name)?.buffer !== buffer);
          if (changed) {
            resident.model?.destroy();
            resident.model = await GpuModel.create(rt, base.spec, weights as Map<string, GpuTensor>, { maxContext: context });
            resident.built = new Map([...weights].map(([n, t]) => [n, t.buffer]));
          }
          scorer = resident.model!;
          mode = 'resident';
        } else {
          // Over the memory budget: merge tensor by tensor into fresh weights (as `dem ppl` does).
          const weights = await collectMerged(rt, base.spec, streamMerge(rt, { recipe, base, models }, { output: 'gpu', signal }), { signal });
          mergeMs = performance.now() - m0;
          temporary = await createLoadedModel(rt, weights, { maxContext: context });
          scorer = temporary.model;
          mode = 'streaming';
        }
      }
      const e0 = performance.now();
      try {
        if (scorer.maxContext < context) throw new InputError(`context ${context} exceeds the model's ${scorer.maxContext}`);
        const perplexities = await this.measure(scorer, sets, body.sets, context, signal);
        const evalMs = performance.now() - e0;
        return { perplexities, mode, setupMs, mergeMs, evalMs, totalMs: performance.now() - t0 };
      } finally {
        temporary?.destroy();
      }
    });
  }

  reference(key: string, sets: readonly string[], context: number | undefined, signal: AbortSignal): Promise<SetPerplexity[]> {
    return this.serial(async () => {
      const rt = await this.deps.runtime();
      const ckpt = this.checkpoint(key);
      const ctx = checkContext(ckpt.spec, context ?? defaultContext(ckpt.spec));
      const texts = sets.map((k) => this.text(k));
      const loaded = await createLoadedModel(rt, await uploadCheckpoint(rt, ckpt, { signal }), { maxContext: ctx });
      try {
        return await this.measure(loaded.model, texts, sets, ctx, signal);
      } finally {
        loaded.destroy();
      }
    });
  }

  layers(base: string, models: readonly string[], signal: AbortSignal): Promise<LayerDistances> {
    return layerDistances(this.checkpoint(base), models.map((k) => this.checkpoint(k)), { signal });
  }

  export(baseKey: string, recipe: MergeRecipe, target: FileSystemDirectoryHandle | 'zip', extraFiles: Record<string, string>, signal: AbortSignal): Promise<ExportResult> {
    return this.serial(async () => {
      const rt = await this.deps.runtime();
      const base = this.checkpoint(baseKey);
      const models = recipe.models.map((m) => this.checkpoint(m.model));
      const job = { recipe, base, models };
      const zip = target === 'zip' ? new ZipWriter() : undefined;
      const sink: FolderSink = zip ? zipSink(zip) : directorySink(target as FileSystemDirectoryHandle);
      const result = await exportMerged(sink, base, planMerge(job), streamMerge(rt, job, { output: 'bytes', signal }), { extraFiles });
      return { files: result.files, bytes: result.bytes, zip: zip ? new Blob(zip.finish() as BlobPart[], { type: 'application/zip' }) : undefined };
    });
  }

  generate(recipe: MergeRecipe, baseKey: string, prompt: string, maxTokens: number, signal: AbortSignal): Promise<{ text: string; tokens: number; ms: number }> {
    return this.serial(async () => {
      const t0 = performance.now();
      const rt = await this.deps.runtime();
      const base = this.checkpoint(baseKey);
      const tokenizer = await this.tokenizer(baseKey);
      const ids = tokenizer.encode(prompt);
      let loaded: LoadedModel;
      if (recipe.models.length === 0) loaded = await createLoadedModel(rt, await uploadCheckpoint(rt, base, { signal }));
      else {
        const models = recipe.models.map((m) => this.checkpoint(m.model));
        const weights = await collectMerged(rt, base.spec, streamMerge(rt, { recipe, base, models }, { output: 'gpu', signal }), { signal });
        loaded = await createLoadedModel(rt, weights);
      }
      try {
        const eos = base.spec.eosTokenId;
        const out = await generate(loaded.model, ids, { maxTokens, signal, stopTokens: eos === undefined ? [] : [eos] });
        return { text: tokenizer.decode(out.ids), tokens: out.ids.length, ms: performance.now() - t0 };
      } finally {
        loaded.destroy();
      }
    });
  }

  /** Drops GPU state (the device was lost or replaced). */
  reset(): void {
    this.dropResident();
  }

  private async residentFor(rt: GpuRuntime, key: string, base: Checkpoint, models: Checkpoint[], signal: AbortSignal): Promise<Resident> {
    if (this.resident && this.resident.key === key && this.resident.rt === rt) return this.resident;
    this.dropResident();
    const merge = await ResidentMerge.create(rt, base, models, { signal });
    this.resident = { rt, key, merge, model: undefined, built: new Map() };
    return this.resident;
  }

  private async measure(scorer: GpuModel, texts: readonly Text[], keys: readonly string[], context: number, signal: AbortSignal): Promise<SetPerplexity[]> {
    const out: SetPerplexity[] = [];
    for (const [i, t] of texts.entries()) {
      const r = await perplexity(scorer, t.ids, { context, signal, label: t.name });
      out.push({ set: keys[i]!, ppl: r.ppl, nllMean: r.nllMean, tokens: r.tokens, predicted: r.predicted });
    }
    return out;
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

  private checkpoint(key: string): Checkpoint {
    const c = this.checkpoints.get(key);
    if (!c) throw new InputError(`checkpoint '${key}' is not loaded in the engine (add it again)`);
    return c;
  }

  private text(key: string, base?: string): Text {
    const t = this.texts.get(key);
    if (!t) throw new InputError(`validation text '${key}' is not tokenized (add it again)`);
    if (base !== undefined && t.base !== base) throw new InputError(`validation text '${t.name}' was tokenized with another base's tokenizer; re-add it`, { file: t.name });
    return t;
  }

  private tokenizer(base: string): Promise<TextTokenizer> {
    let t = this.tokenizers.get(base);
    if (!t) {
      const ckpt = this.checkpoint(base);
      if (ckpt.tokenizerJson === undefined) {
        throw new InputError(`the base '${ckpt.name}' has no tokenizer.json: add it to the base's folder to measure perplexity`, { file: 'tokenizer.json' });
      }
      t = loadTokenizer(ckpt.tokenizerJson);
      t.catch(() => this.tokenizers.delete(base));
      this.tokenizers.set(base, t);
    }
    return t;
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function zipSink(zip: ZipWriter): FolderSink {
  return {
    async create(path) {
      zip.begin(path);
      return {
        write: async (chunk) => zip.write(chunk),
        close: async () => zip.end(),
        abort: async () => zip.abort(),
      };
    },
  };
}

/** File System Access API: createWritable writes to a swap file and commits on close. */
function directorySink(dir: FileSystemDirectoryHandle): FolderSink {
  return {
    async create(path) {
      const handle = await dir.getFileHandle(path, { create: true });
      const stream = await handle.createWritable();
      return {
        write: (chunk) => stream.write(chunk as Uint8Array<ArrayBuffer>),
        close: () => stream.close(),
        abort: () => stream.abort(),
      };
    },
  };
}

