import { throwIfAborted } from '../errors.ts';
import type { TextTokenizer } from '../io/tokenizer.ts';
import type { GpuModel, TokenSpan } from '../model/forward.ts';
import { generate } from '../model/generate.ts';
import { checkChoicesFit, choiceSpan, promptWindow, stripWhitespace, type PreparedChoiceItem, type PreparedTask } from './prepare.ts';
import { argmaxFirst, meanStderr } from './stats.ts';

/**
 * Task scores as the studio and `dem eval` define them (lm-evaluation-harness's):
 * - multiple choice: loglik of a choice = Σ log p(token | everything before it) over its
 *   continuation tokens (per-token NLLs from GpuModel.spanNll, summed in float64); acc: the gold
 *   choice has the highest loglik; acc_norm: the highest loglik / the choice's length in
 *   characters; ties go to the lower index. The choices of an item are scored together, items
 *   in batches.
 * - generative: greedy decoding from the prompt (KV cache) until a stop string, the model's EOS
 *   or `maxTokens` new tokens; the output is cut before the first stop string; exact match
 *   after trimming whitespace on both sides.
 * Each reports the mean and its standard error sqrt(p(1 − p)/(n − 1)).
 */
export interface SpanScorer {
  spanNll(spans: readonly TokenSpan[], signal?: AbortSignal): Promise<number[][]>;
}

export interface GreedyOptions {
  maxTokens: number;
  /** Token ids that end decoding (not part of the result). */
  stopTokens?: readonly number[];
  /** Ends decoding after the token for which it returns true (kept). */
  until: (ids: readonly number[]) => boolean;
  signal?: AbortSignal;
}

/** What task scoring needs from a model: span NLLs and greedy decoding (GpuModel through gpuTaskModel; tools may bring their own). */
export interface TaskModel extends SpanScorer {
  /** The greedy continuation's ids (at most maxTokens; also ends when the model's context is full). */
  greedy(prompt: readonly number[], options: GreedyOptions): Promise<number[]>;
}

/** A GpuModel as a TaskModel: spanNll, and greedy decoding with its KV cache. */
export function gpuTaskModel(model: GpuModel): TaskModel {
  return {
    spanNll: (spans, signal) => model.spanNll(spans, signal),
    greedy: async (prompt, o) => (await generate(model, prompt, { maxTokens: o.maxTokens, stopTokens: o.stopTokens, until: o.until, signal: o.signal })).ids,
  };
}

export interface ChoiceItemScore {
  line: number;
  loglik: number[];
  /** The choice with the highest loglik (acc's prediction). */
  pred: number;
  /** The choice with the highest loglik per character (acc_norm's). */
  predNorm: number;
  gold: number;
}

export interface ChoiceTaskScore {
  kind: 'choice';
  label: string;
  n: number;
  acc: number;
  accNorm: number;
  /** Standard error of acc. */
  stderr: number;
  accNormStderr: number;
  items: ChoiceItemScore[];
}

export interface GenerateItemScore {
  line: number;
  /** The decoded continuation, cut before the first stop string. */
  output: string;
  gold: string;
  correct: boolean;
}

export interface GenerateTaskScore {
  kind: 'generate';
  label: string;
  n: number;
  exactMatch: number;
  stderr: number;
  items: GenerateItemScore[];
}

export type TaskScore = ChoiceTaskScore | GenerateTaskScore;

/** New tokens a generative item may produce unless told otherwise. */
export const DEFAULT_MAX_TOKENS = 32;

/** A task's one number (higher is better): acc for multiple choice, exact match for generative. */
export function headlineScore(s: TaskScore): number {
  return s.kind === 'choice' ? s.acc : s.exactMatch;
}

export const headlineMetric = (kind: TaskScore['kind']): 'acc' | 'exact_match' => (kind === 'choice' ? 'acc' : 'exact_match');

export interface TaskScoreOptions {
  /** Tokens the model sees at most (the context + 1 rule; generation's prompt + new tokens). */
  context: number;
  /** Most new tokens per generative item (default DEFAULT_MAX_TOKENS). */
  maxTokens?: number;
  /** Multiple-choice items per spanNll call (progress and cancellation happen between calls). */
  batchItems?: number;
  /** Token ids that end generation (the model's EOS). */
  stopTokens?: readonly number[];
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** One item's outcome from its choices' logliks. */
export function choiceItemScore(item: PreparedChoiceItem, loglik: number[]): ChoiceItemScore {
  return {
    line: item.line,
    loglik,
    pred: argmaxFirst(loglik),
    predNorm: argmaxFirst(loglik.map((l, i) => l / item.choices[i]!.chars)),
    gold: item.gold,
  };
}

export function choiceTaskScore(label: string, items: ChoiceItemScore[]): ChoiceTaskScore {
  const acc = meanStderr(items.map((i) => i.pred === i.gold));
  const norm = meanStderr(items.map((i) => i.predNorm === i.gold));
  return { kind: 'choice', label, n: items.length, acc: acc.mean, accNorm: norm.mean, stderr: acc.stderr, accNormStderr: norm.stderr, items };
}

export async function scoreChoiceTask(scorer: SpanScorer, task: Extract<PreparedTask, { kind: 'choice' }>, options: TaskScoreOptions): Promise<ChoiceTaskScore> {
  const { context, signal } = options;
  checkChoicesFit(task, context);
  const per = Math.max(1, options.batchItems ?? 8);
  const items: ChoiceItemScore[] = [];
  options.onProgress?.(0, task.items.length);
  for (let i = 0; i < task.items.length; i += per) {
    throwIfAborted(signal);
    const group = task.items.slice(i, i + per);
    const nll = await scorer.spanNll(group.flatMap((item) => item.choices.map((c) => choiceSpan(c, context))), signal);
    let k = 0;
    for (const item of group) {
      const loglik = item.choices.map(() => -nll[k++]!.reduce((a, b) => a + b, 0));
      items.push(choiceItemScore(item, loglik));
    }
    options.onProgress?.(items.length, task.items.length);
  }
  return choiceTaskScore(task.label, items);
}

/** The text before the first occurrence of any stop string. */
export function cutAtStop(text: string, stops: readonly string[]): string {
  let end = text.length;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0 && at < end) end = at;
  }
  return text.slice(0, end);
}

export function generateItemScore(line: number, output: string, gold: string): GenerateItemScore {
  return { line, output, gold, correct: stripWhitespace(output) === stripWhitespace(gold) };
}

export function generateTaskScore(label: string, items: GenerateItemScore[]): GenerateTaskScore {
  const em = meanStderr(items.map((i) => i.correct));
  return { kind: 'generate', label, n: items.length, exactMatch: em.mean, stderr: em.stderr, items };
}

export async function scoreGenerateTask(model: TaskModel, tokenizer: TextTokenizer, task: Extract<PreparedTask, { kind: 'generate' }>, options: TaskScoreOptions): Promise<GenerateTaskScore> {
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  const items: GenerateItemScore[] = [];
  options.onProgress?.(0, task.items.length);
  for (const item of task.items) {
    throwIfAborted(options.signal);
    const stops = item.stop;
    const ids = await model.greedy(promptWindow(item.prompt, options.context, maxTokens), {
      maxTokens,
      stopTokens: options.stopTokens,
      signal: options.signal,
      until: (out) => stops.some((s) => tokenizer.decode(out).includes(s)),
    });
    items.push(generateItemScore(item.line, cutAtStop(ids.length ? tokenizer.decode(ids) : '', stops), item.answer));
    options.onProgress?.(items.length, task.items.length);
  }
  return generateTaskScore(task.label, items);
}

/** Scores a prepared task on a model: spans for multiple choice, greedy decoding for generative. */
export function scoreTask(model: TaskModel, tokenizer: TextTokenizer, task: PreparedTask, options: TaskScoreOptions): Promise<TaskScore> {
  return task.kind === 'choice' ? scoreChoiceTask(model, task, options) : scoreGenerateTask(model, tokenizer, task, options);
}
