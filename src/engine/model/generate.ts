import { InputError, throwIfAborted } from '../errors.ts';
import type { TextTokenizer } from '../io/tokenizer.ts';
import type { GpuModel } from './forward.ts';
import { sampleToken, seededRandom, type SamplingOptions } from './sampling.ts';

/**
 * Autoregressive generation on a GpuModel: the prompt is prefilled into a KV cache with one
 * logitsLast call, then each new token costs one single-position forward. Tokens are handed to
 * `onToken` as they are chosen; the signal is checked between tokens.
 */
export interface GenerateOptions extends Partial<SamplingOptions> {
  /** Most new tokens to produce. */
  maxTokens: number;
  /** PRNG seed for temperature > 0 (default 0): same seed, same prompt, same model → same tokens. */
  seed?: number;
  /** Token ids that end generation (EOS); the stop token is not part of the result. */
  stopTokens?: readonly number[];
  signal?: AbortSignal;
  onToken?: (id: number, index: number) => void;
  /** Ends generation after the token for which it returns true (kept): stop strings. */
  until?: (ids: readonly number[]) => boolean;
}

/** Why generation ended: the token budget, a stop token, `until`, or the context (KV cache) was full. */
export type StopReason = 'max-tokens' | 'eos' | 'until' | 'context';

export interface GenerateResult {
  /** The new tokens (prompt and stop token excluded). */
  ids: number[];
  stop: StopReason;
  promptTokens: number;
}

export async function generate(model: GpuModel, prompt: readonly number[], options: GenerateOptions): Promise<GenerateResult> {
  const { maxTokens } = options;
  if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new InputError(`max tokens must be a non-negative integer (got ${maxTokens})`);
  if (prompt.length === 0) throw new InputError('the prompt has 0 tokens; generation needs at least one');
  if (prompt.length > model.maxContext) throw new InputError(`the prompt has ${prompt.length} tokens, more than the maximum context (${model.maxContext})`);
  const sampling: SamplingOptions = { temperature: options.temperature ?? 0, topK: options.topK };
  const random = seededRandom(options.seed ?? 0);
  const stop = new Set(options.stopTokens ?? []);
  const ids: number[] = [];
  if (maxTokens === 0) return { ids, stop: 'max-tokens', promptTokens: prompt.length };
  throwIfAborted(options.signal);
  // The last chosen token is never fed back, so prompt + maxTokens − 1 positions suffice.
  const cache = model.createKvCache(Math.min(model.maxContext, prompt.length + maxTokens - 1));
  try {
    let logits = await model.logitsLast(prompt, cache);
    for (;;) {
      throwIfAborted(options.signal);
      const id = sampleToken(logits, sampling, random);
      if (stop.has(id)) return { ids, stop: 'eos', promptTokens: prompt.length };
      ids.push(id);
      options.onToken?.(id, ids.length - 1);
      if (options.until?.(ids)) return { ids, stop: 'until', promptTokens: prompt.length };
      if (ids.length === maxTokens) return { ids, stop: 'max-tokens', promptTokens: prompt.length };
      if (cache.length >= cache.capacity) return { ids, stop: 'context', promptTokens: prompt.length };
      logits = await model.logitsLast([id], cache);
    }
  } finally {
    cache.release();
  }
}

/**
 * Incremental detokenisation for streaming: push ids, get the text they add. A byte-level BPE
 * token can end inside a UTF-8 sequence (decoded as U+FFFD); such a tail is held back until the
 * tokens that complete it arrive, or flushed as is at the end.
 */
export class TextStream {
  private readonly ids: number[] = [];
  private emitted = '';

  constructor(private readonly tokenizer: TextTokenizer) {}

  push(id: number): string {
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids);
    let end = text.length;
    while (end > 0 && text[end - 1] === '\uFFFD') end--;
    return this.take(text.slice(0, end));
  }

  flush(): string {
    return this.take(this.tokenizer.decode(this.ids));
  }

  private take(text: string): string {
    if (text.length <= this.emitted.length) return '';
    // Byte-level decoding is prefix-stable: earlier text never changes as tokens are added.
    const delta = text.slice(this.emitted.length);
    this.emitted = text;
    return delta;
  }
}
