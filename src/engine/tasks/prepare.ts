import { InputError } from '../errors.ts';
import type { TextTokenizer } from '../io/tokenizer.ts';
import type { TokenSpan } from '../model/forward.ts';
import type { TaskFile } from './file.ts';

/**
 * Task items as token ids, following lm-evaluation-harness's conventions (the log-likelihood
 * request and generate_until):
 * - multiple choice: whitespace at the end of the context moves to the start of the
 *   continuation; ctx = ids(context), whole = ids(context + continuation), continuation =
 *   whole[len(ctx):] (so a token spanning the boundary belongs to the continuation); both with
 *   the BOS rule's leading ids in front (model/evaluate.ts leadingIds);
 * - generative: the prompt's ids after the same leading ids.
 * Cutting to the model's context happens at scoring time (choiceSpan, promptWindow), where the
 * context length is known. Problems an item has with this tokenizer are InputErrors naming the
 * file and the line.
 */
export interface PreparedChoice {
  ctx: number[];
  cont: number[];
  /** The choice's length in characters (Unicode code points) as written: acc_norm's divisor. */
  chars: number;
}

export interface PreparedChoiceItem {
  line: number;
  gold: number;
  choices: PreparedChoice[];
}

export interface PreparedGenerateItem {
  line: number;
  prompt: number[];
  answer: string;
  stop: string[];
}

export type PreparedTask =
  | { label: string; kind: 'choice'; items: PreparedChoiceItem[] }
  | { label: string; kind: 'generate'; items: PreparedGenerateItem[] };

/** Python's str.isspace characters (what lm-eval's rstrip/strip remove), so both references agree. */
const WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const TRAILING_WS = new RegExp(`[${WS}]+$`, 'u');
const EDGE_WS = new RegExp(`^[${WS}]+|[${WS}]+$`, 'gu');

/** Python's str.strip(): the exact-match comparison's trimming. */
export function stripWhitespace(s: string): string {
  return s.replace(EDGE_WS, '');
}

/** lm-eval's request rule: trailing whitespace of the context becomes the continuation's start. */
export function moveTrailingWhitespace(context: string, continuation: string): [string, string] {
  const m = TRAILING_WS.exec(context);
  if (!m) return [context, continuation];
  return [context.slice(0, m.index), m[0] + continuation];
}

export const codePoints = (s: string): number => [...s].length;

function fail(label: string, problems: string[]): never {
  const more = problems.length - 1;
  throw new InputError(`${problems[0]}${more ? ` (and ${more} more item${more === 1 ? '' : 's'} with problems)` : ''}`, { file: label });
}

/** The file's items as ids of `tokenizer`, after `leading` (the BOS rule's ids). */
export function prepareTask(tokenizer: TextTokenizer, file: TaskFile, leading: readonly number[]): PreparedTask {
  const problems: string[] = [];
  if (file.kind === 'generate') {
    const items = file.items.map((item) => {
      const prompt = [...leading, ...tokenizer.encode(item.prompt)];
      if (prompt.length === 0) problems.push(`line ${item.line}: the prompt is empty and the model adds no BOS token to start from`);
      return { line: item.line, prompt, answer: item.answer, stop: item.stop };
    });
    if (problems.length) fail(file.label, problems);
    return { label: file.label, kind: 'generate', items };
  }
  const items = file.items.map((item) => {
    const choices = item.choices.map((choice, i) => {
      const [context, continuation] = moveTrailingWhitespace(item.context, choice);
      const ctx = [...leading, ...tokenizer.encode(context)];
      const whole = [...leading, ...tokenizer.encode(context + continuation)];
      const cont = whole.slice(ctx.length);
      if (ctx.length === 0) problems.push(`line ${item.line}: the context is empty and the model adds no BOS token, so the first token of choice ${i} has nothing to be predicted from`);
      else if (cont.length === 0) problems.push(`line ${item.line}: choice ${i} adds no tokens after the context`);
      return { ctx, cont, chars: codePoints(choice) };
    });
    return { line: item.line, gold: item.gold, choices };
  });
  if (problems.length) fail(file.label, problems);
  return { label: file.label, kind: 'choice', items };
}

/**
 * The span a choice is scored on: ctx + continuation cut from the left to at most `context` + 1
 * tokens (the model sees at most `context` of them; the last is only predicted).
 */
export function choiceSpan(c: PreparedChoice, context: number): TokenSpan {
  const ids = [...c.ctx, ...c.cont].slice(-(context + 1));
  return { ids, from: ids.length - c.cont.length };
}

/** Refuses (naming the line) a choice whose continuation alone does not fit the context. */
export function checkChoicesFit(task: Extract<PreparedTask, { kind: 'choice' }>, context: number): void {
  const problems: string[] = [];
  for (const item of task.items) {
    item.choices.forEach((c, i) => {
      if (c.cont.length > context) problems.push(`line ${item.line}: choice ${i} has ${c.cont.length} tokens, more than the context (${context})`);
    });
  }
  if (problems.length) fail(task.label, problems);
}

/** The prompt as generation sees it: its last `context` − `maxTokens` ids, leaving room for the answer. */
export function promptWindow(prompt: readonly number[], context: number, maxTokens: number): number[] {
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InputError(`max tokens must be an integer ≥ 1 (got ${maxTokens})`);
  if (maxTokens >= context) throw new InputError(`max tokens (${maxTokens}) must be less than the context (${context}): the prompt needs room`);
  return prompt.slice(-(context - maxTokens));
}
