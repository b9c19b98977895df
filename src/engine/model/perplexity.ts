import { InputError, throwIfAborted } from '../errors.ts';

/**
 * Perplexity as the studio, `dem ppl` and the PyTorch reference (scripts/reference_ppl.py) define it: ids (encoded without special tokens) split
 * into consecutive windows of `context` tokens, the last possibly shorter; windows of < 2 tokens
 * are skipped; each window predicts its tokens 1..n−1 from the preceding ones in that window;
 * ppl = exp(total NLL / predicted tokens).
 *
 * BOS: when the checkpoint's tokenizer starts texts with a BOS token (io/tokenizer.ts
 * tokenizerBos: `add_bos_token` in tokenizer_config.json, as Llama 2/3, Mistral and Gemma ship
 * it), every window that is scored gets that BOS in front, as context only: the BOS itself is
 * never predicted nor counted, and the window's first text token is predicted from it, so such
 * a window predicts all n of its tokens (n + 1 positions). Without it (GPT-2, the byte-level
 * fixtures) nothing is added.
 */
export interface PerplexityResult {
  tokens: number;
  predicted: number;
  context: number;
  nllSum: number;
  nllMean: number;
  ppl: number;
}

/** Anything that can score windows: returns the summed NLL of tokens 1..n−1 of each window. */
export interface WindowScorer {
  nllWindows(windows: readonly (readonly number[])[], signal?: AbortSignal): Promise<number[]>;
}

export interface PerplexityOptions {
  context: number;
  /** Windows scored per call (a batch on the GPU). */
  batchWindows?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** For error messages: which validation text this is. */
  label?: string;
  /** The BOS id put before every window as context (see above); absent: none. */
  bos?: number;
}

export function splitWindows(ids: readonly number[], context: number): number[][] {
  if (!Number.isInteger(context) || context < 2) throw new InputError(`context must be an integer ≥ 2 (got ${context})`);
  const out: number[][] = [];
  for (let start = 0; start < ids.length; start += context) {
    const window = ids.slice(start, start + context);
    if (window.length >= 2) out.push(window);
  }
  return out;
}

export async function perplexity(scorer: WindowScorer, ids: readonly number[], options: PerplexityOptions): Promise<PerplexityResult> {
  const { bos } = options;
  const windows = splitWindows(ids, options.context).map((w) => (bos === undefined ? w : [bos, ...w]));
  const predicted = windows.reduce((n, w) => n + w.length - 1, 0);
  if (predicted === 0) {
    throw new InputError(
      `${options.label ? `${options.label}: ` : ''}the text has ${ids.length} token${ids.length === 1 ? '' : 's'}; perplexity needs at least 2`,
    );
  }
  const batch = Math.max(1, options.batchWindows ?? 8);
  let nllSum = 0;
  let done = 0;
  options.onProgress?.(0, windows.length);
  for (let i = 0; i < windows.length; i += batch) {
    throwIfAborted(options.signal);
    const part = windows.slice(i, i + batch);
    const sums = await scorer.nllWindows(part, options.signal);
    for (const s of sums) nllSum += s;
    done += part.length;
    options.onProgress?.(done, windows.length);
  }
  const nllMean = nllSum / predicted;
  return { tokens: ids.length, predicted, context: options.context, nllSum, nllMean, ppl: Math.exp(nllMean) };
}
