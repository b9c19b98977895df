import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { testRuntime } from '../testing/gpu.ts';
import { runEval } from './eval.ts';
import { main, reportError, USAGE } from './main.ts';

/**
 * `dem eval` against the independent PyTorch float64 reference (scripts/reference_ppl.py --task,
 * outputs committed under e2e/fixtures/reference/tasks/ by scripts/make-reference.sh): the same
 * acc, acc_norm and exact match, the same prediction for every item and the same generated text,
 * per-choice log-likelihoods within relative 1e-4 — for a checkpoint and for merges made in memory.
 */
const ROOT = new URL('../../', import.meta.url).pathname;
const REF_DIR = join(ROOT, 'e2e/fixtures/reference/tasks');

interface RefChoice {
  name: string;
  n: number;
  acc: number;
  acc_norm: number;
  stderr: number | null;
  items: { loglik: number[]; pred: number; gold: number }[];
}
interface RefGenerate {
  name: string;
  n: number;
  exact_match: number;
  stderr: number | null;
  items: { output: string; gold: string }[];
}
interface Reference {
  model?: string;
  base?: string;
  ft?: string[];
  lambda?: number;
  context: number;
  max_tokens: number;
  tasks: ((RefChoice | RefGenerate) & { file: string })[];
}

const references = readdirSync(REF_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => ({ file: f, ref: JSON.parse(readFileSync(join(REF_DIR, f), 'utf8')) as Reference }));

function modelArgs(r: Reference): string[] {
  if (r.base) return ['--base', join(ROOT, r.base), ...(r.ft ?? []).flatMap((f) => ['--model', join(ROOT, f)]), '--lambda', String(r.lambda ?? 1)];
  return ['--model', join(ROOT, r.model!)];
}

async function runJson(args: string[]): Promise<{ tasks: Record<string, unknown>[] }> {
  let out = '';
  const code = await runEval([...args, '--json', '--quiet'], { runtime: () => testRuntime(), out: (s) => (out += s), signal: new AbortController().signal });
  expect(code).toBe(0);
  return JSON.parse(out) as { tasks: Record<string, unknown>[] };
}

describe('dem eval vs the PyTorch float64 reference', () => {
  it('has references for a checkpoint and for merges, with both kinds of task', () => {
    expect(references.map((r) => r.ref.model ?? `merge:${r.ref.base}`)).toEqual(expect.arrayContaining(['e2e/fixtures/tiny-gpt2', 'merge:e2e/fixtures/tiny-gpt2', 'merge:e2e/fixtures/tiny-llama']));
    for (const { ref } of references) expect(ref.tasks.map((t) => ('acc' in t ? 'choice' : 'generate'))).toEqual(['choice', 'generate']);
  });

  for (const { file, ref } of references) {
    it(file.replace(/\.json$/, ''), async () => {
      const args = [...modelArgs(ref), '--context', String(ref.context), '--max-tokens', String(ref.max_tokens), ...ref.tasks.flatMap((t) => ['--task', join(ROOT, t.file)])];
      const got = await runJson(args);
      expect(got.tasks).toHaveLength(ref.tasks.length);
      ref.tasks.forEach((want, i) => {
        const t = got.tasks[i]!;
        expect(t.name).toBe(want.name);
        expect(t.n).toBe(want.n);
        if ('acc' in want) {
          expect(Object.keys(t)).toEqual(['name', 'n', 'acc', 'acc_norm', 'stderr', 'items']);
          const items = t.items as RefChoice['items'];
          expect(items.map((x) => [x.pred, x.gold]), `${file} ${want.name}: predictions`).toEqual(want.items.map((x) => [x.pred, x.gold]));
          expect([t.acc, t.acc_norm]).toEqual([want.acc, want.acc_norm]);
          expect(t.stderr as number).toBeCloseTo(want.stderr!, 12);
          let worst = 0;
          items.forEach((x, k) =>
            x.loglik.forEach((l, c) => {
              const r = want.items[k]!.loglik[c]!;
              const rel = Math.abs(l - r) / Math.abs(r);
              worst = Math.max(worst, rel);
              expect(rel, `${file} ${want.name} item ${k} choice ${c}: ${l} vs ${r}`).toBeLessThanOrEqual(1e-4);
            }),
          );
          console.log(`${file} ${want.name}: acc ${want.acc.toFixed(4)}, acc_norm ${want.acc_norm.toFixed(4)} identical; ${items.length} items, per-choice loglik worst relative error ${worst.toExponential(2)}`);
        } else {
          expect(Object.keys(t)).toEqual(['name', 'n', 'exact_match', 'stderr', 'items']);
          expect(t.items).toEqual(want.items.map((x) => ({ output: x.output, gold: x.gold })));
          expect(t.exact_match).toBe(want.exact_match);
          console.log(`${file} ${want.name}: exact_match ${want.exact_match} identical, outputs ${JSON.stringify(want.items.map((x) => x.output))}`);
        }
      });
    });
  }
});

describe('dem eval errors (one line, before any GPU work)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('is registered in main() and its usage', async () => {
    const logged: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (logged.push(String(s)), true));
    expect(await main(['eval', '--help'])).toBe(0);
    expect(logged.join('')).toMatch(/^dem eval --model DIR --task FILE/);
    expect(USAGE).toMatch(/dem eval --model DIR --task FILE/);
  });

  const tmp = mkdtempSync(join(tmpdir(), 'dem-eval-'));
  const bad = join(tmp, 'bad.jsonl');
  writeFileSync(bad, '{"context": "a", "choices": [" b", " c"], "gold": 0}\n{"context": "a", "choices": [" b", " c"], "gold": 3}\n');
  const gpt2 = join(ROOT, 'e2e/fixtures/tiny-gpt2');
  const cloze = join(ROOT, 'e2e/fixtures/tasks/cloze.jsonl');
  const answer = join(ROOT, 'e2e/fixtures/tasks/answer.jsonl');
  const cases: [string, string[], RegExp, number][] = [
    ['a bad line', ['--model', gpt2, '--task', cloze, '--task', bad], /bad\.jsonl: line 2: "gold" must be an integer index into the 2 choices \(0-1\), got number 3$/, 1],
    ['missing task file', ['--model', gpt2, '--task', join(tmp, 'nope.jsonl')], /nope\.jsonl: no such file/, 1],
    ['no task', ['--model', gpt2], /at least one --task FILE/, 1],
    ['bad --max-tokens', ['--model', gpt2, '--task', answer, '--max-tokens', '0'], /--max-tokens: '0' is not an integer ≥ 1/, 1],
    ['merge option without --base', ['--model', gpt2, '--task', cloze, '--lambda', '0.5'], /--lambda only apply to a merge/, 1],
  ];
  for (const [what, args, message, exit] of cases) {
    it(what, async () => {
      const errors: string[] = [];
      vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.map(String).join(' ')));
      expect(await runEval(args, { signal: new AbortController().signal }).catch(reportError)).toBe(exit);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(message);
    });
  }
});
