/**
 * Fine-tuning a checkpoint of any supported family (GPT-2, Llama family, Phi-3) with
 * onnxruntime-web's training wasm. The ORT module is injected (the browser Worker imports
 * `onnxruntime-web/training`, Node tests import its .mjs by path), so this file stays pure TS.
 * Artifacts come from ./artifacts.ts.
 */
import { CancelledError, IncompatibleCheckpointError, InputError, throwIfAborted } from '../errors.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { CONFIG_FILE, SINGLE_WEIGHTS_FILE, TOKENIZER_FILE } from '../io/checkpoint.ts';
import { decodeToF32, encodeFromF32, isFloatDType } from '../io/dtypes.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import type { ModelSpec } from '../io/spec.ts';
import { layerOf } from '../io/weights.ts';
import { DEFAULT_ADAMW, buildArtifacts, learningRate, type AdamWSettings, type TrainingArtifacts } from './artifacts.ts';
import { batchTensors, planBatches, planData, type DataPlan } from './data.ts';
import { initLoraFactors, loraFactors, loraParams, writeLoraAdapter, type LoraFactor, type LoraSelection } from './lora.ts';
import { INPUT_IDS, LABELS, LOSS, checkTrainable, modelParams, type ParamInfo } from './model.ts';

// ---- the slice of the onnxruntime-web training API used here (structural, so no import) ----
export interface OrtValueLike {
  data: unknown;
}
export interface OrtTrainingSessionLike {
  runTrainStep(feeds: Record<string, unknown>): Promise<Record<string, OrtValueLike>>;
  runOptimizerStep(): Promise<void>;
  lazyResetGrad(): Promise<void>;
  runEvalStep(feeds: Record<string, unknown>): Promise<Record<string, OrtValueLike>>;
  getContiguousParameters(trainableOnly: boolean): Promise<OrtValueLike>;
  release(): Promise<void>;
}
export interface OrtTrainingModule {
  Tensor: new (type: 'int64', data: BigInt64Array, dims: readonly number[]) => unknown;
  TrainingSession: {
    create(artifacts: { checkpointState: Uint8Array; trainModel: Uint8Array; evalModel?: Uint8Array; optimizerModel?: Uint8Array }): Promise<OrtTrainingSessionLike>;
  };
}

/** Which parameters are trained; the rest are frozen. 'lora' trains only added low-rank factors (train/lora.ts). */
export type TrainableSelection = { kind: 'all' } | { kind: 'no-embeddings' } | { kind: 'last-layers'; count: number } | LoraSelection;

export interface TrainSettings {
  steps: number;
  batchSize: number; // B
  seqLen: number; // T
  lr: number;
  warmupSteps: number;
  weightDecay: number;
  /** Cosine decay floor as a fraction of lr (default 0.1). */
  minLrRatio?: number;
  trainable: TrainableSelection;
  /** Tail of the token stream kept for held-out loss (0 = none). */
  heldOutFraction: number;
  /** Held-out loss every N steps (and after the last); 0 = only at the end. */
  evalEvery: number;
  /** At most this many held-out batches per evaluation (default 8). */
  evalBatches?: number;
  /** Weights snapshot every N steps; 0 = none. */
  snapshotEvery: number;
  /** Seed of the data order. */
  seed: number;
}

export interface TrainProgress {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  heldOutLoss?: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

/** wasm32 linear memory cap. */
export const WASM_MEMORY_CAP = 4 * 1024 ** 3;

export interface MemoryEstimate {
  bytes: number;
  params: number;
  trainable: number;
  parts: { weights: number; gradientsAndMoments: number; activations: number; artifacts: number };
}

/**
 * Rough peak of the wasm heap: f32 weights, per trainable parameter a gradient buffer, a
 * gradient temporary and two Adam moments, the forward activations kept for backward plus as
 * many backward temporaries, and the checkpoint/model bytes handed to the runtime.
 */
export function estimateTrainingMemory(spec: ModelSpec, params: readonly ParamInfo[], trainable: ReadonlySet<string>, B: number, T: number): MemoryEstimate {
  const size = (p: ParamInfo): number => p.shape.reduce((a, b) => a * b, 1);
  const nParams = params.reduce((n, p) => n + size(p), 0);
  const nTrain = params.filter((p) => trainable.has(p.name)).reduce((n, p) => n + size(p), 0);
  const { hiddenSize: C, intermediateSize: FF, numHeads: NH, numKvHeads: NKV, headDim: HS, vocabSize: V, numLayers: L } = spec;
  const perLayer = B * T * (10 * C + 2 * (NH + 2 * NKV) * HS + 4 * FF) + 3 * B * NH * T * T;
  const acts = L * perLayer + 3 * B * T * V + 4 * B * T * C;
  const parts = { weights: 4 * nParams, gradientsAndMoments: 16 * nTrain, activations: 2 * 4 * acts, artifacts: 2 * 4 * nParams };
  return { bytes: Object.values(parts).reduce((a, b) => a + b, 0) + 64 * 1024 ** 2, params: nParams, trainable: nTrain, parts };
}

/** The names trained under `sel` (for 'lora', `params` must include the factors: `trainingParams`). */
export function resolveTrainable(spec: ModelSpec, params: readonly ParamInfo[], sel: TrainableSelection): Set<string> {
  if (sel.kind === 'lora') return new Set(params.filter((p) => p.lora).map((p) => p.name));
  const emb = new Set(params.filter((p) => p.role === 'embed' || p.role === 'pos_embed').map((p) => p.name));
  let names: string[];
  if (sel.kind === 'all') names = params.map((p) => p.name);
  else if (sel.kind === 'no-embeddings') names = params.map((p) => p.name).filter((n) => !emb.has(n));
  else {
    if (!Number.isInteger(sel.count) || sel.count < 1 || sel.count > spec.numLayers) {
      throw new InputError(`'last layers' must be 1..${spec.numLayers} for this model, got ${sel.count}`);
    }
    const first = spec.numLayers - sel.count;
    // The last blocks plus the final norm and an untied head (a tied head is the embedding: frozen).
    names = params.map((p) => p.name).filter((n) => {
      const l = layerOf(spec.family, n);
      return l === null ? !emb.has(n) : l >= first;
    });
  }
  return new Set(names);
}

function checkSettings(s: TrainSettings, spec: ModelSpec): void {
  const posInt = (v: number, what: string): void => {
    if (!Number.isInteger(v) || v < 1) throw new InputError(`${what} must be a positive integer, got ${v}`);
  };
  posInt(s.steps, 'steps');
  posInt(s.batchSize, 'batch size');
  posInt(s.seqLen, 'sequence length');
  if (spec.positions === 'learned' && s.seqLen > spec.maxPositions) throw new InputError(`sequence length ${s.seqLen} exceeds the model's ${spec.maxPositions} positions`);
  if (!(s.lr > 0 && Number.isFinite(s.lr))) throw new InputError(`learning rate must be > 0, got ${s.lr}`);
  if (!(Number.isInteger(s.warmupSteps) && s.warmupSteps >= 0)) throw new InputError(`warm-up steps must be >= 0, got ${s.warmupSteps}`);
  if (!(s.weightDecay >= 0)) throw new InputError(`weight decay must be >= 0, got ${s.weightDecay}`);
  if (!(Number.isInteger(s.evalEvery) && s.evalEvery >= 0)) throw new InputError(`evaluate-every must be >= 0, got ${s.evalEvery}`);
  if (!(Number.isInteger(s.snapshotEvery) && s.snapshotEvery >= 0)) throw new InputError(`snapshot-every must be >= 0, got ${s.snapshotEvery}`);
}

/**
 * The graph's parameters under `sel`: the base's (`has`: which optional tensors exist) and, for
 * a LoRA, its factors after them (null otherwise).
 */
export function trainingParams(spec: ModelSpec, has: (name: string) => boolean, sel: TrainableSelection): { params: ParamInfo[]; lora: LoraFactor[] | null } {
  const base = modelParams(spec, has);
  if (sel.kind !== 'lora') return { params: base, lora: null };
  const lora = loraFactors(spec, base, sel);
  return { params: [...base, ...loraParams(lora)], lora };
}

/**
 * What a run writes from its current weights: the fine-tuned checkpoint folder, or for a LoRA
 * the PEFT adapter folder of its factors (over `checkpoint`).
 */
export async function writeTrained(checkpoint: Checkpoint, sel: TrainableSelection, weights: ReadonlyMap<string, Float32Array>, metadata: Record<string, string> = {}): Promise<Map<string, Uint8Array>> {
  if (sel.kind !== 'lora') return writeFineTuned(checkpoint, weights, metadata);
  const { lora } = trainingParams(checkpoint.spec, (n) => checkpoint.tensors.has(n), sel);
  return writeLoraAdapter(checkpoint, sel, lora!, weights, metadata);
}

/** The f32 values of every parameter the forward reads. */
export async function loadParams(checkpoint: Checkpoint, params: readonly ParamInfo[], signal?: AbortSignal): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const p of params) {
    throwIfAborted(signal);
    const ref = checkpoint.tensors.get(p.name)!;
    if (!isFloatDType(ref.dtype)) throw new IncompatibleCheckpointError(`dtype ${ref.dtype} cannot be fine-tuned (F32, F16 or BF16 only)`, { file: ref.file, tensor: p.name });
    out.set(p.name, decodeToF32(await checkpoint.read(p.name), ref.dtype));
  }
  return out;
}

/** One training run's session and data. Use `fineTune` unless you drive the steps yourself. */
export class Trainer {
  private stepsDone = 0;

  private constructor(
    readonly spec: ModelSpec,
    readonly settings: TrainSettings,
    readonly adamw: AdamWSettings,
    readonly data: DataPlan,
    readonly batches: number[][],
    readonly artifacts: TrainingArtifacts,
    readonly memory: MemoryEstimate,
    private readonly initial: Map<string, Float32Array>,
    /** The LoRA factors trained (null: the base's own weights are). */
    readonly lora: LoraFactor[] | null,
    private readonly ort: OrtTrainingModule,
    private readonly session: OrtTrainingSessionLike,
  ) {}

  /** Validates everything (settings, text length, memory) before any session is created. */
  static async create(ort: OrtTrainingModule, checkpoint: Checkpoint, tokens: ArrayLike<number>, settings: TrainSettings, signal?: AbortSignal): Promise<Trainer> {
    const spec = checkpoint.spec;
    checkTrainable(spec);
    checkSettings(settings, spec);
    const B = settings.batchSize;
    const T = settings.seqLen;
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= spec.vocabSize) throw new InputError(`token ${i} has id ${id}, outside the vocabulary [0, ${spec.vocabSize})`);
    }
    const data = planData(tokens, T, B, settings.heldOutFraction);
    const { params, lora } = trainingParams(spec, (n) => checkpoint.tensors.has(n), settings.trainable);
    const trainable = resolveTrainable(spec, params, settings.trainable);
    if (trainable.size === 0) throw new InputError('no parameter is selected for training');
    const memory = estimateTrainingMemory(spec, params, trainable, B, T);
    if (memory.bytes > WASM_MEMORY_CAP) {
      const gib = (b: number): string => (b / 1024 ** 3).toFixed(2);
      throw new InputError(
        `training '${checkpoint.name}' needs about ${gib(memory.bytes)} GiB (weights ${gib(memory.parts.weights)}, gradients + Adam moments ${gib(memory.parts.gradientsAndMoments)}, activations ${gib(memory.parts.activations)}), above the 4 GiB wasm32 limit: train fewer layers${settings.trainable.kind === 'lora' ? ' or a lower rank' : ' or a LoRA adapter (the base frozen)'}, or use a smaller batch or sequence length`,
      );
    }
    const weights = await loadParams(checkpoint, params.filter((p) => !p.lora), signal);
    if (lora) for (const [k, v] of initLoraFactors(lora, settings.seed)) weights.set(k, v);
    throwIfAborted(signal);
    const adamw: AdamWSettings = {
      ...DEFAULT_ADAMW,
      lr: settings.lr,
      warmupSteps: settings.warmupSteps,
      totalSteps: settings.steps,
      weightDecay: settings.weightDecay,
      ...(settings.minLrRatio !== undefined ? { minLrRatio: settings.minLrRatio } : {}),
    };
    const artifacts = buildArtifacts(spec, params, weights, trainable, { batch: B, seqLen: T }, adamw);
    const session = await ort.TrainingSession.create({
      checkpointState: artifacts.checkpoint,
      trainModel: artifacts.trainModel,
      evalModel: artifacts.evalModel,
      optimizerModel: artifacts.optimizerModel,
    });
    const batches = planBatches(data.windows.length, B, settings.steps, settings.seed);
    return new Trainer(spec, settings, adamw, data, batches, artifacts, memory, weights, lora, ort, session);
  }

  get step(): number {
    return this.stepsDone;
  }

  private feeds(windows: readonly Int32Array[]): { feeds: Record<string, unknown>; predicted: number } {
    const { batchSize: B, seqLen: T } = this.settings;
    const { ids, labels, predicted } = batchTensors(windows, B, T);
    return { feeds: { [INPUT_IDS]: new this.ort.Tensor('int64', ids, [B, T]), [LABELS]: new this.ort.Tensor('int64', labels, [B, T]) }, predicted };
  }

  /** One optimizer step on the next planned batch; returns its training loss. */
  async trainStep(): Promise<number> {
    const batch = this.batches[this.stepsDone];
    if (!batch) throw new InputError(`all ${this.settings.steps} planned steps are done`);
    const { feeds } = this.feeds(batch.map((i) => this.data.windows[i]!));
    const out = await this.session.runTrainStep(feeds);
    await this.session.runOptimizerStep();
    await this.session.lazyResetGrad();
    this.stepsDone++;
    return scalar(out, LOSS);
  }

  /** Mean NLL of a batch under the current weights (eval model, no update). */
  async evalLoss(windows: readonly Int32Array[]): Promise<number> {
    const { feeds } = this.feeds(windows);
    return scalar(await this.session.runEvalStep(feeds), LOSS);
  }

  /** Mean held-out NLL per predicted token over at most `evalBatches` batches; NaN without held-out text. */
  async heldOutLoss(): Promise<number> {
    const B = this.settings.batchSize;
    const windows = this.data.heldOut.slice(0, B * (this.settings.evalBatches ?? 8));
    let nll = 0;
    let count = 0;
    for (let i = 0; i < windows.length; i += B) {
      const chunk = windows.slice(i, i + B);
      const { predicted } = batchTensors(chunk, B, this.settings.seqLen);
      nll += (await this.evalLoss(chunk)) * predicted;
      count += predicted;
    }
    return count ? nll / count : NaN;
  }

  /** Current values of every parameter (trainable from the session, frozen as loaded). */
  async weights(): Promise<Map<string, Float32Array>> {
    const flat = (await this.session.getContiguousParameters(true)).data as Float32Array;
    const out = new Map(this.initial);
    let offset = 0;
    for (const p of this.artifacts.trainable) {
      const n = p.shape.reduce((a, b) => a * b, 1);
      out.set(p.name, flat.slice(offset, offset + n));
      offset += n;
    }
    if (offset !== flat.length) throw new Error(`runtime returned ${flat.length} trainable values, expected ${offset}`);
    return out;
  }

  lrAt(step: number): number {
    return learningRate(step, this.adamw);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function scalar(out: Record<string, OrtValueLike>, name: string): number {
  const v = out[name] ?? Object.values(out)[0];
  const data = v?.data as Float32Array | undefined;
  if (!data || data.length < 1) throw new Error(`the runtime returned no '${name}'`);
  return data[0]!;
}

/** A fine-tuned checkpoint folder in HF layout: base names and dtypes, single model.safetensors. */
export async function writeFineTuned(checkpoint: Checkpoint, weights: ReadonlyMap<string, Float32Array>, metadata: Record<string, string> = {}): Promise<Map<string, Uint8Array>> {
  const entries = [];
  for (const t of checkpoint.tensors.values()) {
    const w = weights.get(t.name);
    entries.push({ name: t.storedName, dtype: t.dtype, shape: t.shape, data: w ? encodeFromF32(w, t.dtype) : await checkpoint.read(t.name) });
  }
  const files = new Map<string, Uint8Array>();
  files.set(SINGLE_WEIGHTS_FILE, writeSafetensors(entries, { ...checkpoint.metadata, ...metadata }));
  const config = checkpoint.files.get(CONFIG_FILE);
  if (config) files.set(CONFIG_FILE, await config.read(0, config.size));
  const tok = checkpoint.files.get(TOKENIZER_FILE);
  if (tok) files.set(TOKENIZER_FILE, await tok.read(0, tok.size));
  return files;
}

export interface FineTuneJob {
  ort: OrtTrainingModule;
  checkpoint: Checkpoint;
  tokens: ArrayLike<number>;
  settings: TrainSettings;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  /** Called every `snapshotEvery` steps with all parameters (canonical names). */
  onSnapshot?: (step: number, weights: Map<string, Float32Array>) => void | Promise<void>;
}

export interface FineTuneResult {
  /** Files of the fine-tuned checkpoint folder (model.safetensors, config.json, tokenizer.json), or of the LoRA adapter folder. */
  files: Map<string, Uint8Array>;
  losses: number[];
  heldOut: { step: number; loss: number }[];
  tokensPerSecond: number;
  memory: MemoryEstimate;
}

/** Resolves after queued tasks (messages, timers) have had their turn; setTimeout exists in Workers, pages and Node. */
function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Runs a whole fine-tune. Cancelled -> CancelledError and nothing is returned or written. */
export async function fineTune(job: FineTuneJob): Promise<FineTuneResult> {
  const { settings, signal } = job;
  throwIfAborted(signal);
  const trainer = await Trainer.create(job.ort, job.checkpoint, job.tokens, settings, signal);
  try {
    const losses: number[] = [];
    const heldOut: { step: number; loss: number }[] = [];
    const tokensPerStep = settings.batchSize * settings.seqLen;
    let trainMs = 0;
    const started = Date.now();
    for (let s = 1; s <= settings.steps; s++) {
      // onnxruntime-web settles its step promises as microtasks: without a macrotask between
      // steps a Worker never dispatches `train-cancel` (or any message) until the loop ends.
      await nextMacrotask();
      throwIfAborted(signal);
      const t0 = performance.now();
      const loss = await trainer.trainStep();
      trainMs += performance.now() - t0;
      losses.push(loss);
      let held: number | undefined;
      const last = s === settings.steps;
      if (trainer.data.heldOut.length && ((settings.evalEvery > 0 && s % settings.evalEvery === 0) || last)) {
        held = await trainer.heldOutLoss();
        heldOut.push({ step: s, loss: held });
      }
      const tps = (tokensPerStep * s) / (trainMs / 1000);
      job.onProgress?.({
        step: s,
        totalSteps: settings.steps,
        loss,
        lr: trainer.lrAt(s),
        ...(held !== undefined ? { heldOutLoss: held } : {}),
        tokensPerSecond: tps,
        elapsedSeconds: (Date.now() - started) / 1000,
        etaSeconds: ((settings.steps - s) * trainMs) / s / 1000,
      });
      if (job.onSnapshot && settings.snapshotEvery > 0 && s % settings.snapshotEvery === 0 && !last) {
        await job.onSnapshot(s, await trainer.weights());
      }
    }
    throwIfAborted(signal);
    const weights = await trainer.weights();
    if (job.onSnapshot && settings.snapshotEvery > 0) await job.onSnapshot(settings.steps, weights);
    const files = await writeTrained(job.checkpoint, settings.trainable, weights, { dem_fine_tuned_from: job.checkpoint.name, dem_steps: String(settings.steps) });
    throwIfAborted(signal);
    return { files, losses, heldOut, tokensPerSecond: (tokensPerStep * settings.steps) / (trainMs / 1000), memory: trainer.memory };
  } catch (e) {
    if (signal?.aborted && !(e instanceof CancelledError)) throw new CancelledError();
    throw e;
  } finally {
    await trainer.release();
  }
}
