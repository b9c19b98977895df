import { InputError } from '../errors.ts';
import type { ModelSpec } from '../io/spec.ts';
import type { TextTokenizer } from '../io/tokenizer.ts';
import { perplexity, type PerplexityResult, type WindowScorer } from './perplexity.ts';

/**
 * Per-text validation perplexity, the number DEM's coefficient search optimises: each text is
 * encoded (no special tokens) and scored in windows of `context` tokens as perplexity.ts defines,
 * each window after the tokenizer's BOS when it has one (context only: never predicted or
 * counted). Encoding happens up front (tokenizeTexts) so empty or too-short texts fail before
 * any GPU work.
 */
export interface ValidationText {
  /** Shown in errors and results (a file name). */
  label: string;
  text: string;
}

export interface EncodedText {
  label: string;
  /** The text's tokens (no special tokens). */
  ids: number[];
  /** The BOS put before every window (the tokenizer's `bos`); absent: none. */
  bos?: number;
}

export interface TextPerplexity extends PerplexityResult {
  label: string;
  /** The first token ids, to compare tokenizers across implementations. */
  idsHead: number[];
}

export interface EvaluateOptions {
  context: number;
  batchWindows?: number;
  signal?: AbortSignal;
  /** Windows scored so far in text `index` of `count`. */
  onProgress?: (p: { index: number; count: number; label: string; done: number; total: number }) => void;
}

const IDS_HEAD = 16;

/**
 * The context perplexity uses unless told otherwise: the model's positions, at most 1024; one
 * token fewer when a BOS goes before each window, so the window and its BOS fit them.
 */
export function defaultContext(spec: ModelSpec, bos = false): number {
  return Math.min(spec.maxPositions, 1024) - (bos ? 1 : 0);
}

/** Checks a requested context against the model: an integer ≥ 2, within GPT-2's learned positions (with the BOS, if any). */
export function checkContext(spec: ModelSpec, context: number, bos = false): number {
  if (!Number.isInteger(context) || context < 2) throw new InputError(`context must be an integer ≥ 2 (got ${context})`);
  if (spec.positions === 'learned' && context + (bos ? 1 : 0) > spec.maxPositions) {
    throw new InputError(`context ${context}${bos ? ' and the BOS token' : ''} exceeds the model's ${spec.maxPositions} learned positions`);
  }
  return context;
}

/**
 * The ids put before every task context or prompt as context only (never predicted, never
 * scored): the tokenizer's BOS when it adds one (the rule is io/tokenizer.ts tokenizerBos, the
 * same one perplexity windows follow), else none.
 */
export function leadingIds(tokenizer: Pick<TextTokenizer, 'bos'>): number[] {
  return tokenizer.bos === undefined ? [] : [tokenizer.bos];
}

/** Refuses (InputError naming the text) a text that is empty or nothing but whitespace. */
export function checkTextNotBlank(label: string, text: string): void {
  if (text.trim() === '') throw new InputError('the text is empty: paste some text or choose a non-empty .txt file', { file: label });
}

/** A validation text's ids, refused when perplexity cannot use it: fewer than 2 tokens, or blank. */
export function encodeText(tokenizer: TextTokenizer, label: string, text: string): number[] {
  const ids = tokenizer.encode(text);
  if (ids.length < 2) throw new InputError(`has ${ids.length} token${ids.length === 1 ? '' : 's'}; perplexity needs at least 2`, { file: label });
  checkTextNotBlank(label, text);
  return ids;
}

export function tokenizeTexts(tokenizer: TextTokenizer, texts: readonly ValidationText[]): EncodedText[] {
  if (texts.length === 0) throw new InputError('no validation text given');
  return texts.map(({ label, text }) => ({ label, ids: encodeText(tokenizer, label, text), ...(tokenizer.bos === undefined ? {} : { bos: tokenizer.bos }) }));
}

export async function evaluateTexts(scorer: WindowScorer, texts: readonly EncodedText[], options: EvaluateOptions): Promise<TextPerplexity[]> {
  const out: TextPerplexity[] = [];
  for (const [index, t] of texts.entries()) {
    const r = await perplexity(scorer, t.ids, {
      context: options.context,
      batchWindows: options.batchWindows,
      signal: options.signal,
      label: t.label,
      bos: t.bos,
      onProgress: (done, total) => options.onProgress?.({ index, count: texts.length, label: t.label, done, total }),
    });
    out.push({ ...r, label: t.label, idsHead: t.ids.slice(0, IDS_HEAD) });
  }
  return out;
}
