import { InputError } from '../errors.ts';

/**
 * Task files: JSON Lines, one item per line, every item of a file the same kind.
 *   multiple choice  {"context": str, "choices": [str, ...], "gold": int}
 *   generative       {"prompt": str, "answer": str, "stop": [str, ...]}   (stop optional, default ["\n"])
 * Other fields (an id, a source) are ignored; blank lines are skipped. A bad line is an
 * InputError naming the file, the line number and the problem.
 */
export interface ChoiceItem {
  /** 1-based line in the file. */
  line: number;
  context: string;
  choices: string[];
  gold: number;
}

export interface GenerateItem {
  line: number;
  prompt: string;
  answer: string;
  stop: string[];
}

export type TaskKind = 'choice' | 'generate';

export type TaskFile = { label: string; kind: 'choice'; items: ChoiceItem[] } | { label: string; kind: 'generate'; items: GenerateItem[] };

export const DEFAULT_STOP: readonly string[] = ['\n'];

const KIND_NAME: Record<TaskKind, string> = { choice: 'multiple-choice', generate: 'generative' };

type Parsed = { kind: 'choice'; item: ChoiceItem } | { kind: 'generate'; item: GenerateItem };

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `the string ${JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v)}` : `${typeof v} ${JSON.stringify(v)}`;
}

function parseItem(raw: unknown, line: number): Parsed {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`expected a JSON object, got ${describe(raw)}`);
  const o = raw as Record<string, unknown>;
  const str = (key: string): string => {
    if (typeof o[key] !== 'string') throw new Error(`"${key}" must be a string, got ${o[key] === undefined ? 'nothing' : describe(o[key])}`);
    return o[key];
  };
  if ('choices' in o || 'gold' in o) {
    const context = str('context');
    const choices = o.choices;
    if (!Array.isArray(choices) || choices.length < 2) throw new Error(`"choices" must be an array of at least 2 strings, got ${choices === undefined ? 'nothing' : Array.isArray(choices) ? `${choices.length}` : describe(choices)}`);
    choices.forEach((c, i) => {
      if (typeof c !== 'string') throw new Error(`choice ${i} must be a string, got ${describe(c)}`);
      if (c === '') throw new Error(`choice ${i} is empty`);
    });
    const gold = o.gold;
    if (typeof gold !== 'number' || !Number.isInteger(gold) || gold < 0 || gold >= choices.length) {
      throw new Error(`"gold" must be an integer index into the ${choices.length} choices (0-${choices.length - 1}), got ${gold === undefined ? 'nothing' : describe(gold)}`);
    }
    return { kind: 'choice', item: { line, context, choices: choices as string[], gold } };
  }
  if ('prompt' in o || 'answer' in o) {
    const prompt = str('prompt');
    const answer = str('answer');
    let stop = [...DEFAULT_STOP];
    if (o.stop !== undefined) {
      if (!Array.isArray(o.stop)) throw new Error(`"stop" must be an array of strings, got ${describe(o.stop)}`);
      o.stop.forEach((s, i) => {
        if (typeof s !== 'string' || s === '') throw new Error(`stop string ${i} must be a non-empty string, got ${describe(s)}`);
      });
      stop = o.stop as string[];
    }
    return { kind: 'generate', item: { line, prompt, answer, stop } };
  }
  throw new Error('neither a multiple-choice item {"context", "choices", "gold"} nor a generative one {"prompt", "answer"}');
}

/** Parses a task file; `label` (the file name) is what errors and results call it. */
export function parseTaskFile(text: string, label: string): TaskFile {
  const lines = text.split('\n');
  const errors: string[] = [];
  let kind: TaskKind | undefined;
  let first = 0;
  const choice: ChoiceItem[] = [];
  const generative: GenerateItem[] = [];
  lines.forEach((raw, i) => {
    const line = i + 1;
    const src = raw.replace(/\r$/, '');
    if (src.trim() === '') return;
    let parsed: Parsed;
    try {
      let json: unknown;
      try {
        json = JSON.parse(src);
      } catch (cause) {
        throw new Error(`not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`);
      }
      parsed = parseItem(json, line);
      if (kind !== undefined && parsed.kind !== kind) {
        throw new Error(`a ${KIND_NAME[parsed.kind]} item in a ${KIND_NAME[kind]} task file (line ${first}): one kind per file`);
      }
    } catch (error) {
      errors.push(`line ${line}: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (kind === undefined) {
      kind = parsed.kind;
      first = line;
    }
    if (parsed.kind === 'choice') choice.push(parsed.item);
    else generative.push(parsed.item);
  });
  if (errors.length > 0) {
    const more = errors.length - 1;
    throw new InputError(`${errors[0]}${more ? ` (and ${more} more bad line${more === 1 ? '' : 's'})` : ''}`, { file: label });
  }
  if (kind === undefined) throw new InputError('has no items: a task file has one JSON object per line', { file: label });
  return kind === 'choice' ? { label, kind, items: choice } : { label, kind, items: generative };
}
