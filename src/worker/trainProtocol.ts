import type { TrainProgress, TrainSettings } from '../engine/index.ts';
import type { ErrorInfo, FileEntry } from './protocol.ts';

/**
 * Page <-> training Worker messages (train.worker.ts). Training runs in its own Worker (the
 * onnxruntime-web training wasm; no GPU), so the engine Worker stays free for merging and
 * perplexity. A `train-start` is answered by `train-status`/`train-progress`/`train-snapshot`
 * messages and then exactly one `train-done` or `train-error`; `train-cancel` names the run to
 * stop, which then ends with a `train-error` whose code is 'cancelled' and no checkpoint.
 */
export interface TrainStartRequest {
  kind: 'train-start';
  id: number;
  /** Name of the base checkpoint (its folder). */
  name: string;
  /** The base checkpoint folder's files (config.json, safetensors, tokenizer.json). */
  files: FileEntry[];
  /** Training text; tokenized in the Worker with the checkpoint's tokenizer.json. */
  text: string;
  settings: TrainSettings;
}

export interface TrainCancelRequest {
  kind: 'train-cancel';
  /** The id of the run to stop. */
  target: number;
}

export type TrainRequest = TrainStartRequest | TrainCancelRequest;

/** A run's fields besides `kind` and `id` (what trainClient.ts's `train` takes). */
export type TrainStartBody = Omit<TrainStartRequest, 'kind' | 'id'>;

export type TrainStage = 'loading' | 'tokenizing' | 'building' | 'training' | 'writing';

export interface TrainedFile {
  path: string;
  bytes: Uint8Array;
}

export type TrainReply =
  | { kind: 'train-status'; id: number; stage: TrainStage; tokens?: number }
  | { kind: 'train-progress'; id: number; progress: TrainProgress }
  /**
   * All parameters at `step` (canonical names; for a LoRA only its factors, by PEFT module path)
   * and the same weights as a checkpoint folder (the base's names and dtypes), or for a LoRA as a
   * PEFT adapter folder, that the engine Worker loads as a distribution vector while the run goes
   * on; the buffers are transferred.
   */
  | { kind: 'train-snapshot'; id: number; step: number; weights: Record<string, Float32Array>; files: TrainedFile[] }
  | { kind: 'train-done'; id: number; files: TrainedFile[]; losses: number[]; heldOut: { step: number; loss: number }[]; tokensPerSecond: number }
  | { kind: 'train-error'; id: number; error: ErrorInfo };

export type TrainReplyKind = TrainReply['kind'];
/** The reply of one kind, e.g. TrainReplyOf<'train-snapshot'>. */
export type TrainReplyOf<K extends TrainReplyKind> = Extract<TrainReply, { kind: K }>;
