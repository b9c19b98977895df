import {
  Workspace,
  ZipWriter,
  zipSink,
  type CheckpointSummary,
  type CompatibilityItem,
  type FileSet,
  type FolderSink,
  type GpuRuntime,
  type LayerDistances,
  type KeyedTaskScore,
  type MergeRecipe,
  type TaskKind,
  type TextScore,
} from '../engine/index.ts';
import type { EvaluateBody, EvaluateResult, ExportResult, GenerateSampling, KeyedScore, ScoreBody, ScoreResult, SetPerplexity } from './protocol.ts';

/**
 * The Worker's adapter over the engine's Workspace (src/engine/workspace/): message bodies in,
 * structured-clone results out. The workspace keeps the resident merge between requests, so a
 * slider move costs only the combine kernels and the forward passes.
 */
export interface SessionDeps {
  /** The live runtime, starting the device if needed. */
  runtime: () => Promise<GpuRuntime>;
}

const perplexity = (t: TextScore): SetPerplexity => ({ set: t.key, ppl: t.ppl, nllMean: t.nllMean, tokens: t.tokens, predicted: t.predicted });
const keyed = ({ key, ...t }: KeyedTaskScore): KeyedScore => ({ ...t, task: key });

export class WorkspaceSession {
  private readonly ws: Workspace;

  constructor(deps: SessionDeps) {
    this.ws = new Workspace({ runtime: deps.runtime, resident: true });
  }

  load(key: string, name: string, files: FileSet, signal: AbortSignal): Promise<CheckpointSummary> {
    return this.ws.open(key, name, files, { signal });
  }

  unload(key: string): null {
    this.ws.close(key);
    return null;
  }

  compat(base: string, models: readonly string[]): Record<string, CompatibilityItem[]> {
    return this.ws.compat(base, models);
  }

  tokenize(key: string, name: string, text: string, base: string): Promise<{ tokens: number }> {
    return this.ws.addText(key, name, text, base);
  }

  async evaluate(body: EvaluateBody, signal: AbortSignal): Promise<EvaluateResult> {
    const r = await this.ws.evaluate({ recipe: body.recipe, texts: body.sets, context: body.context }, { signal });
    return { perplexities: r.texts.map(perplexity), mode: r.mode, setupMs: r.setupMs, mergeMs: r.mergeMs, evalMs: r.evalMs, totalMs: r.totalMs };
  }

  async reference(key: string, sets: readonly string[], context: number | undefined, signal: AbortSignal): Promise<SetPerplexity[]> {
    return (await this.ws.reference(key, sets, context, { signal })).texts.map(perplexity);
  }

  addTask(key: string, name: string, text: string, base: string): Promise<{ kind: TaskKind; items: number }> {
    return this.ws.addTask(key, name, text, base);
  }

  async score(body: ScoreBody, signal: AbortSignal): Promise<ScoreResult> {
    const r = await this.ws.scoreTasks({ recipe: body.recipe, tasks: body.tasks, context: body.context }, { signal });
    return { scores: r.tasks.map(keyed), mode: r.mode, setupMs: r.setupMs, mergeMs: r.mergeMs, evalMs: r.evalMs, totalMs: r.totalMs };
  }

  async taskReference(key: string, tasks: readonly string[], context: number | undefined, signal: AbortSignal): Promise<KeyedScore[]> {
    return (await this.ws.referenceTasks(key, tasks, { context, signal })).tasks.map(keyed);
  }

  layers(base: string, models: readonly string[], signal: AbortSignal): Promise<LayerDistances> {
    return this.ws.layers(base, models, { signal });
  }

  async export(_base: string, recipe: MergeRecipe, target: FileSystemDirectoryHandle | 'zip', extraFiles: Record<string, string>, signal: AbortSignal): Promise<ExportResult> {
    const zip = target === 'zip' ? new ZipWriter() : undefined;
    const sink: FolderSink = zip ? zipSink(zip) : directorySink(target as FileSystemDirectoryHandle);
    const result = await this.ws.exportMerge(recipe, sink, { extraFiles, signal });
    return { files: result.files, bytes: result.bytes, zip: zip ? new Blob(zip.finish() as BlobPart[], { type: 'application/zip' }) : undefined };
  }

  async generate(recipe: MergeRecipe, _base: string, prompt: string, maxTokens: number, signal: AbortSignal, sampling: GenerateSampling = {}): Promise<{ text: string; tokens: number; ms: number }> {
    const r = await this.ws.generate({ recipe, prompt, maxTokens, ...sampling }, { signal });
    return { text: r.text, tokens: r.ids.length, ms: r.ms };
  }

  /** Drops GPU state (the device was lost or replaced). */
  reset(): void {
    this.ws.reset();
  }
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
