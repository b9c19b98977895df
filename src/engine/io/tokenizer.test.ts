import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TokenizerError } from '../errors.ts';
import { loadTokenizer } from './tokenizer.ts';

const json = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'e2e', 'fixtures', 'tiny-gpt2', 'tokenizer.json'), 'utf8')) as {
  model: { vocab: Record<string, number>; merges: string[] };
};

describe('fixture tokenizer (byte-level BPE)', () => {
  it('loads with 256 byte symbols + 43 merges + <|endoftext|>', async () => {
    const tok = await loadTokenizer(json);
    expect(tok.vocabSize).toBe(300);
    expect(Object.keys(json.model.vocab)).toHaveLength(299);
    expect(json.model.merges).toHaveLength(43);
    expect(tok.encode('<|endoftext|>')).toEqual([299]);
    expect(tok.decode([299])).toBe('<|endoftext|>');
  });

  it('applies learned merges and adds no special tokens', async () => {
    const tok = await loadTokenizer(json);
    const the = json.model.vocab['Ġthe']!;
    expect(the).toBeGreaterThanOrEqual(256);
    expect(tok.encode(' the')).toEqual([the]);
    const ids = tok.encode('The dog and the fox.');
    expect(ids.length).toBeLessThan('The dog and the fox.'.length);
    expect(ids).not.toContain(299);
  });

  it('round-trips arbitrary text byte-exactly', async () => {
    const tok = await loadTokenizer(json);
    const texts = [
      'The quick brown fox jumps over the lazy dog.',
      '  leading and trailing spaces  ',
      'line one\nline two\r\n\ttabbed',
      "it's what we'll do, isn't it?",
      'numbers 12345 and 3.14159',
      'Ünïcödé: café, naïve, 日本語, emoji 🦊🐕',
      'text with <|endoftext|> in the middle',
      '',
    ];
    for (const t of texts) {
      const ids = tok.encode(t);
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
      expect(tok.decode(ids)).toBe(t);
    }
  });

  it('throws TokenizerError for bad JSON objects and out-of-range ids', async () => {
    await expect(loadTokenizer(null)).rejects.toBeInstanceOf(TokenizerError);
    await expect(loadTokenizer([1, 2])).rejects.toThrow(/^tokenizer\.json: must be a JSON object/);
    await expect(loadTokenizer({ version: '1.0' }, 'm/tokenizer.json')).rejects.toThrow(/^m\/tokenizer\.json: has no "model" object/);
    await expect(loadTokenizer({ model: { type: 'NoSuchModel' } })).rejects.toBeInstanceOf(TokenizerError);
    const tok = await loadTokenizer(json);
    expect(() => tok.decode([300])).toThrow(TokenizerError);
    expect(() => tok.decode([-1])).toThrow(TokenizerError);
  });
});
