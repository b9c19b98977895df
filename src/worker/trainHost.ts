import { CancelledError, InputError, TokenizerError, blobSource, fineTune, loadTokenizer, openCheckpoint, writeTrained, type ByteSource, type OrtTrainingModule } from '../engine/index.ts';
import { toErrorInfo } from './errors.ts';
import type { TrainReply, TrainRequest, TrainStartRequest } from './trainProtocol.ts';

/**
 * The training Worker's logic, free of Worker globals (train.worker.ts wires it to `self`; tests
 * drive it directly with the Node build of the runtime). One AbortController per run.
 */
export type TrainPost = (reply: TrainReply, transfer?: ArrayBuffer[]) => void;

export interface TrainHost {
  handle(request: TrainRequest): Promise<void>;
}

export function createTrainHost(ort: () => Promise<OrtTrainingModule>, post: TrainPost): TrainHost {
  const runs = new Map<number, AbortController>();

  async function start(req: TrainStartRequest, signal: AbortSignal): Promise<void> {
    const { id } = req;
    post({ kind: 'train-status', id, stage: 'loading' });
    const files = new Map<string, ByteSource>(req.files.map((f) => [f.path, blobSource(f.file, f.path)]));
    const checkpoint = await openCheckpoint(files, req.name, { signal });
    post({ kind: 'train-status', id, stage: 'tokenizing' });
    if (checkpoint.tokenizerJson === undefined) throw new TokenizerError(`'${req.name}' has no tokenizer.json: the training text cannot be tokenized`, { file: 'tokenizer.json' });
    const tokens = (await loadTokenizer(checkpoint.tokenizerJson)).encode(req.text);
    if (tokens.length === 0) throw new InputError('the training text is empty');
    post({ kind: 'train-status', id, stage: 'building', tokens: tokens.length });
    const module = await ort();
    let started = false;
    const result = await fineTune({
      ort: module,
      checkpoint,
      tokens,
      settings: req.settings,
      signal,
      onProgress: (progress) => {
        if (!started) {
          started = true;
          post({ kind: 'train-status', id, stage: 'training' });
        }
        post({ kind: 'train-progress', id, progress });
      },
      onSnapshot: async (step, weights) => {
        const record: Record<string, Float32Array> = {};
        const transfer: ArrayBuffer[] = [];
        // A LoRA's snapshot carries its factors only: the frozen base is what the page already has.
        const lora = req.settings.trainable.kind === 'lora';
        for (const [k, v] of weights) {
          if (lora && checkpoint.tensors.has(k)) continue;
          const copy = v.slice();
          record[k] = copy;
          transfer.push(copy.buffer);
        }
        const files = [...(await writeTrained(checkpoint, req.settings.trainable, weights, { dem_fine_tuned_from: req.name, dem_steps: String(step) }))].map(([path, bytes]) => ({ path, bytes }));
        for (const f of files) transfer.push(f.bytes.buffer as ArrayBuffer);
        post({ kind: 'train-snapshot', id, step, weights: record, files }, transfer);
      },
    });
    if (signal.aborted) throw new CancelledError();
    post({ kind: 'train-status', id, stage: 'writing' });
    const out = [...result.files].map(([path, bytes]) => ({ path, bytes }));
    post(
      { kind: 'train-done', id, files: out, losses: result.losses, heldOut: result.heldOut, tokensPerSecond: result.tokensPerSecond },
      out.map((f) => f.bytes.buffer as ArrayBuffer),
    );
  }

  return {
    async handle(request) {
      if (request.kind === 'train-cancel') {
        runs.get(request.target)?.abort();
        return;
      }
      const ctl = new AbortController();
      runs.set(request.id, ctl);
      try {
        await start(request, ctl.signal);
      } catch (error) {
        post({ kind: 'train-error', id: request.id, error: toErrorInfo(ctl.signal.aborted ? new CancelledError() : error) });
      } finally {
        runs.delete(request.id);
      }
    },
  };
}
