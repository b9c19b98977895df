import {
  Workspace,
  Zip64Writer,
  zip64Sink,
  type CheckpointSummary,
  type CompatibilityItem,
  type FileSet,
  type GpuRuntime,
  type LayerDistances,
  type MemoryPlan,
  type KeyedTaskScore,
  type MergeRecipe,
  type TaskKind,
  type TextScore,
} from '../engine/index.ts';
import { directorySink } from './directorySink.ts';
import type { EvaluateBody, EvaluateResult, ExportResult, GenerateSampling, KeyedScore, PlanResult, ScoreBody, ScoreResult, SetPerplexity } from './protocol.ts';

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

const planResult = (p: MemoryPlan): PlanResult => ({ lines: p.lines, bytes: p.choice?.bytes, mode: p.choice?.mode, approximate: p.choice?.approximate ?? false, refusal: p.refusal });

export class WorkspaceSession {
  private readonly ws: Workspace;

  constructor(deps: SessionDeps) {
    this.ws = new Workspace({ runtime: deps.runtime, resident: true });
  }

  /** `base`: the loaded checkpoint a LoRA adapter folder is read over. */
  load(key: string, name: string, files: FileSet, signal: AbortSignal, base?: string): Promise<CheckpointSummary> {
    return this.ws.open(key, name, files, { signal, base });
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
    const r = await this.ws.evaluate({ recipe: body.recipe, texts: body.sets, context: body.context, exact: body.exact }, { signal });
    return {
      perplexities: r.texts.map(perplexity),
      mode: r.mode,
      ...(r.approximate ? { approximate: r.approximate } : {}),
      plan: planResult(r.plan),
      setupMs: r.setupMs,
      mergeMs: r.mergeMs,
      evalMs: r.evalMs,
      totalMs: r.totalMs,
    };
  }

  async plan(recipe: MergeRecipe, context: number | undefined): Promise<PlanResult> {
    return planResult(await this.ws.plan({ recipe, context }));
  }

  configure(compressed: boolean): null {
    this.ws.setCompressed(compressed);
    return null;
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

  /**
   * The merge as a zip (in memory: only a finished one is handed out) or into a new subfolder of
   * the chosen folder (directorySink.ts); files are reported with that subfolder.
   */
  async export(_base: string, recipe: MergeRecipe, target: FileSystemDirectoryHandle | 'zip', extraFiles: Record<string, string>, signal: AbortSignal): Promise<ExportResult> {
    if (target !== 'zip') {
      const folder = directorySink(target, `merged-${this.ws.checkpoint(recipe.base).name}`, signal);
      const result = await this.ws.exportMerge(recipe, folder, { extraFiles, signal });
      return { files: result.files.map((f) => `${folder.folder}/${f}`), bytes: result.bytes };
    }
    const file = await zipFile();
    try {
      const zip = new Zip64Writer(file);
      const result = await this.ws.exportMerge(recipe, zip64Sink(zip), { extraFiles, signal });
      await zip.finish();
      return { files: result.files, bytes: result.bytes, zip: await file.close() };
    } catch (error) {
      await file.abort();
      throw error;
    }
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

/** Where a zip export streams: a file the caller can download once closed, or throw away. */
interface ZipFile {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<Blob>;
  abort(): Promise<void>;
}

/**
 * A zip export goes into the Origin Private File System (exports/merged-model.zip), so no more than
 * one chunk of the model is in Worker memory, whatever its size; the returned File reads from disk.
 * A sync access handle where the browser has one in Workers (Chromium, Firefox, Safari), else a
 * writable stream. Without OPFS (Node, old browsers) the parts are kept in memory instead.
 */
async function zipFile(): Promise<ZipFile> {
  const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
  if (!storage?.getDirectory) {
    const parts: Uint8Array[] = [];
    return {
      write: async (chunk) => void parts.push(chunk),
      close: async () => new Blob(parts as BlobPart[], { type: 'application/zip' }),
      abort: async () => void (parts.length = 0),
    };
  }
  const dir = await (await storage.getDirectory()).getDirectoryHandle('exports', { create: true });
  const name = 'merged-model.zip';
  const handle = await dir.getFileHandle(name, { create: true });
  const remove = async (): Promise<void> => dir.removeEntry(name).catch(() => undefined);
  const syncHandle = (handle as unknown as { createSyncAccessHandle?: () => Promise<SyncHandle> }).createSyncAccessHandle;
  if (syncHandle) {
    const h = await syncHandle.call(handle);
    h.truncate(0);
    let at = 0;
    return {
      write: async (chunk) => {
        let done = 0;
        while (done < chunk.length) done += h.write(chunk.subarray(done), { at: at + done });
        at += chunk.length;
      },
      close: async () => {
        h.flush();
        h.close();
        return handle.getFile();
      },
      abort: async () => {
        h.close();
        await remove();
      },
    };
  }
  const stream = await handle.createWritable();
  return {
    write: (chunk) => stream.write(chunk as Uint8Array<ArrayBuffer>),
    close: async () => {
      await stream.close();
      return handle.getFile();
    },
    abort: async () => {
      await stream.abort().catch(() => undefined);
      await remove();
    },
  };
}

interface SyncHandle {
  write(buffer: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}
