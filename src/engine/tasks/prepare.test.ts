import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.ts';
import type { TextTokenizer } from '../io/tokenizer.ts';
import { parseTaskFile } from './file.ts';
import { checkChoicesFit, choiceSpan, codePoints, moveTrailingWhitespace, prepareTask, promptWindow, stripWhitespace } from './prepare.ts';
import { choiceItemScore, choiceTaskScore, cutAtStop, generateItemScore, scoreChoiceTask, type SpanScorer } from './score.ts';

/** Characters as ids (code units), except "ab", one token (id 1000): a token that can span a context/continuation boundary. */
const fake: TextTokenizer = {
  vocabSize: 1001,
  encode: (text) => {
    const ids: number[] = [];
    for (let i = 0; i < text.length; i++) {
      if (text.startsWith('ab', i)) {
        ids.push(1000);
        i++;
      } else ids.push(text.charCodeAt(i));
    }
    return ids;
  },
  decode: (ids) => ids.map((id) => (id === 1000 ? 'ab' : String.fromCharCode(id))).join(''),
};
const ids = (s: string): number[] => fake.encode(s);

describe('preparing task items (lm-eval request rules)', () => {
  it("moves the context's trailing whitespace (Python's str.isspace set) to the continuation", () => {
    expect(moveTrailingWhitespace('Q: 2 + 3 = ', '5')).toEqual(['Q: 2 + 3 =', ' 5']);
    expect(moveTrailingWhitespace('a\t\n \u3000', 'b')).toEqual(['a', '\t\n \u3000b']);
    expect(moveTrailingWhitespace('a\u001f', 'b')).toEqual(['a', '\u001fb']);
    // U+FEFF is whitespace to JavaScript's \s but not to Python's isspace.
    expect(moveTrailingWhitespace('a\uFEFF', 'b')).toEqual(['a\uFEFF', 'b']);
    expect(moveTrailingWhitespace('a', ' b')).toEqual(['a', ' b']);
    expect(stripWhitespace('\t 42 \u00a0\n')).toBe('42');
    expect(stripWhitespace('\uFEFF42')).toBe('\uFEFF42');
  });

  it('continuation = ids(context + choice) after the context ids; the leading (BOS) ids go first', () => {
    const file = parseTaskFile('{"context": "xa ", "choices": ["bc", "d"], "gold": 0}', 't.jsonl');
    const p = prepareTask(fake, file, [7]);
    expect(p.kind).toBe('choice');
    if (p.kind !== 'choice') return;
    // "xa" + " bc": no merge across the moved space; "d" likewise.
    expect(p.items[0]!.choices).toEqual([
      { ctx: [7, ...ids('xa')], cont: ids(' bc'), chars: 2 },
      { ctx: [7, ...ids('xa')], cont: ids(' d'), chars: 1 },
    ]);
    // A token spanning the boundary ("a" + "b" → "ab") belongs to the whole: the continuation is what follows the context's length.
    const q = prepareTask(fake, parseTaskFile('{"context": "xa", "choices": ["bc", "d"], "gold": 0}', 't.jsonl'), []);
    if (q.kind !== 'choice') return;
    expect(q.items[0]!.choices[0]).toEqual({ ctx: ids('xa'), cont: [ids('c')[0]!], chars: 2 });
  });

  it('refuses, naming the line, a choice that adds no token and an empty context without BOS', () => {
    // "xa" + "b" = "xab" → [x, ab]: nothing after the context's two ids.
    expect(() => prepareTask(fake, parseTaskFile('{"context": "q", "choices": ["r", "s"], "gold": 0}\n{"context": "xa", "choices": ["b", "c"], "gold": 1}', 't.jsonl'), [])).toThrow(
      /^t\.jsonl: line 2: choice 0 adds no tokens after the context$/,
    );
    expect(() => prepareTask(fake, parseTaskFile('{"context": "", "choices": ["r", "s"], "gold": 0}', 't.jsonl'), [])).toThrow(/line 1: the context is empty and the model adds no BOS token/);
    // With a BOS id the empty context is fine: the first choice token is predicted from it.
    expect(() => prepareTask(fake, parseTaskFile('{"context": "", "choices": ["r", "s"], "gold": 0}', 't.jsonl'), [9])).not.toThrow();
    expect(() => prepareTask(fake, parseTaskFile('{"prompt": "", "answer": "a"}', 'g.jsonl'), [])).toThrow(/^g\.jsonl: line 1: the prompt is empty/);
  });

  it('cuts ctx + continuation from the left to context + 1 tokens', () => {
    const c = { ctx: [1, 2, 3, 4, 5, 6, 7, 8], cont: [9, 10, 11], chars: 3 };
    expect(choiceSpan(c, 5)).toEqual({ ids: [6, 7, 8, 9, 10, 11], from: 3 });
    expect(choiceSpan(c, 20)).toEqual({ ids: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], from: 8 });
    // The continuation alone may fill the context: its first token still has one before it.
    expect(choiceSpan(c, 3)).toEqual({ ids: [8, 9, 10, 11], from: 1 });
    const task = { label: 't.jsonl', kind: 'choice' as const, items: [{ line: 4, gold: 0, choices: [c, { ...c, cont: [1] }] }] };
    expect(() => checkChoicesFit(task, 2)).toThrow(/^t\.jsonl: line 4: choice 0 has 3 tokens, more than the context \(2\)$/);
    expect(() => checkChoicesFit(task, 3)).not.toThrow();
  });

  it("keeps a generative prompt's last context − maxTokens ids", () => {
    expect(promptWindow([1, 2, 3, 4, 5, 6], 8, 4)).toEqual([3, 4, 5, 6]);
    expect(promptWindow([1, 2], 8, 4)).toEqual([1, 2]);
    expect(() => promptWindow([1], 8, 8)).toThrow(InputError);
    expect(() => promptWindow([1], 8, 0)).toThrow(InputError);
  });
});

describe('scores from log-likelihoods', () => {
  it('acc: highest loglik; acc_norm: highest loglik per character (code points); ties to the lower index', () => {
    const item = { line: 1, gold: 1, choices: [{ ctx: [1], cont: [2], chars: 1 }, { ctx: [1], cont: [2], chars: 4 }, { ctx: [1], cont: [2], chars: 2 }] };
    // Raw: choice 0 (−2) wins; per character: −2/1, −4/4 = −1, −3/2 → choice 1.
    expect(choiceItemScore(item, [-2, -4, -3])).toEqual({ line: 1, loglik: [-2, -4, -3], pred: 0, predNorm: 1, gold: 1 });
    // Ties: equal logliks → index 0; equal per-character values (−2/1 = −4/2) → the lower index.
    expect(choiceItemScore({ ...item, choices: [item.choices[0]!, { ...item.choices[1]!, chars: 2 }] }, [-2, -4])).toMatchObject({ pred: 0, predNorm: 0 });
    expect(choiceItemScore(item, [-3, -3, -3])).toMatchObject({ pred: 0 });
    expect(codePoints('café')).toBe(4);
    expect(codePoints('👍 ok')).toBe(4);
    const s = choiceTaskScore('t', [choiceItemScore(item, [-2, -4, -3]), choiceItemScore({ ...item, gold: 0 }, [-2, -4, -3])]);
    expect([s.acc, s.accNorm, s.n]).toEqual([0.5, 0.5, 2]);
    expect(s.stderr).toBeCloseTo(Math.sqrt(0.25), 15);
  });

  it('generative: the output is cut before the first stop string; exact match after trimming', () => {
    expect(cutAtStop('42\nmore', ['\n'])).toBe('42');
    expect(cutAtStop('a. b\n', ['\n', '.'])).toBe('a');
    expect(cutAtStop('abc', ['x'])).toBe('abc');
    expect(generateItemScore(1, ' 42 ', '42').correct).toBe(true);
    expect(generateItemScore(1, '42', ' 42\n').correct).toBe(true);
    expect(generateItemScore(1, '4 2', '42').correct).toBe(false);
  });

  it("scores an item's choices together and sums each continuation's token NLLs", async () => {
    const calls: number[] = [];
    // −loglik = Σ over the scored tokens of (token id / 10).
    const scorer: SpanScorer = {
      spanNll: async (spans) => {
        calls.push(spans.length);
        return spans.map((s) => s.ids.slice(s.from).map((id) => id / 10));
      },
    };
    const mk = (line: number, conts: number[][], gold: number) => ({ line, gold, choices: conts.map((cont) => ({ ctx: [5, 6], cont, chars: cont.length })) });
    const task = { label: 't', kind: 'choice' as const, items: [mk(1, [[1], [2, 3]], 0), mk(2, [[9], [1, 1], [4]], 1), mk(3, [[7], [8]], 1)] };
    const got = await scoreChoiceTask(scorer, task, { context: 8, batchItems: 2 });
    // Two items per call: 2 + 3 spans, then 2.
    expect(calls).toEqual([5, 2]);
    expect(got.items.map((i) => i.loglik.map((x) => Number(x.toFixed(12))))).toEqual([[-0.1, -0.5], [-0.9, -0.2, -0.4], [-0.7, -0.8]]);
    expect(got.items.map((i) => i.pred)).toEqual([0, 1, 0]);
    expect(got.acc).toBeCloseTo(2 / 3, 15);
  });
});
