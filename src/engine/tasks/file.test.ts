import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.ts';
import { parseTaskFile } from './file.ts';

describe('parseTaskFile', () => {
  it('reads multiple-choice items (extra fields ignored, blank lines and CRLF tolerated)', () => {
    const f = parseTaskFile('{"context": "a", "choices": [" b", " c"], "gold": 1, "id": 7}\r\n\n  \n{"context": "", "choices": ["x", "y", "z"], "gold": 0}\n', 'mc.jsonl');
    expect(f).toEqual({
      label: 'mc.jsonl',
      kind: 'choice',
      items: [
        { line: 1, context: 'a', choices: [' b', ' c'], gold: 1 },
        { line: 4, context: '', choices: ['x', 'y', 'z'], gold: 0 },
      ],
    });
  });

  it('reads generative items; stop defaults to a newline', () => {
    const f = parseTaskFile('{"prompt": "2+2=", "answer": "4"}\n{"prompt": "p", "answer": "a", "stop": [".", "\\n\\n"]}', 'gen.jsonl');
    expect(f.kind).toBe('generate');
    expect(f.items).toEqual([
      { line: 1, prompt: '2+2=', answer: '4', stop: ['\n'] },
      { line: 2, prompt: 'p', answer: 'a', stop: ['.', '\n\n'] },
    ]);
  });

  const bad: [string, string, RegExp][] = [
    ['invalid JSON', '{"context": "a", "choices": ["b", "c"], "gold": 0}\n{"context": "a", "choices": ["b", "c"], "gold": 0\n', /^t\.jsonl: line 2: not valid JSON/],
    ['gold out of range', '{"context": "a", "choices": ["b", "c"], "gold": 2}', /^t\.jsonl: line 1: "gold" must be an integer index into the 2 choices \(0-1\), got number 2$/],
    ['gold not an integer', '{"context": "a", "choices": ["b", "c"], "gold": 0.5}', /line 1: "gold" must be an integer index/],
    ['one choice', '{"context": "a", "choices": ["b"], "gold": 0}', /line 1: "choices" must be an array of at least 2 strings, got 1/],
    ['an empty choice', '{"context": "a", "choices": ["b", ""], "gold": 0}', /line 1: choice 1 is empty/],
    ['a choice that is no string', '{"context": "a", "choices": ["b", 3], "gold": 0}', /line 1: choice 1 must be a string, got number 3/],
    ['no context', '{"choices": ["b", "c"], "gold": 0}', /line 1: "context" must be a string, got nothing/],
    ['no answer', '{"prompt": "p"}', /line 1: "answer" must be a string, got nothing/],
    ['bad stop', '{"prompt": "p", "answer": "a", "stop": "\\n"}', /line 1: "stop" must be an array of strings, got the string "\\n"/],
    ['empty stop string', '{"prompt": "p", "answer": "a", "stop": [""]}', /line 1: stop string 0 must be a non-empty string/],
    ['not an object', '[1, 2]', /line 1: expected a JSON object, got an array/],
    ['neither kind', '{"question": "q"}', /line 1: neither a multiple-choice item/],
    ['two kinds in one file', '{"prompt": "p", "answer": "a"}\n{"context": "a", "choices": ["b", "c"], "gold": 0}', /line 2: a multiple-choice item in a generative task file \(line 1\): one kind per file/],
    ['no items', '\n \n', /^t\.jsonl: has no items/],
    ['several bad lines', '{}\n{"prompt": 1, "answer": "a"}\n{"prompt": "p", "answer": "a"}\nnope', /^t\.jsonl: line 1: neither .* \(and 2 more bad lines\)$/],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses ${what} with the file, the line and the problem`, () => {
      let error: unknown;
      try {
        parseTaskFile(text, 't.jsonl');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InputError);
      expect((error as InputError).file).toBe('t.jsonl');
      expect((error as InputError).message).toMatch(message);
    });
  }
});
