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

const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'e2e', 'fixtures');
const read = (path: string): Record<string, unknown> => JSON.parse(readFileSync(join(FIXTURES, path), 'utf8')) as Record<string, unknown>;
const TEXTS = ['prose', 'code'].map((t) => readFileSync(join(FIXTURES, 'texts', `${t}.txt`), 'utf8'));

describe('tokenizers as the families ship them', () => {
  const cases: [string, string, number | undefined][] = [
    ['tiny-llama3', 'byte-level BPE with Llama 3\'s Split regex and ignore_merges; BOS <|begin_of_text|> from the post-processor', 299],
    ['tiny-qwen3', 'byte-level BPE with Qwen\'s Split regex; no BOS', undefined],
    ['tiny-llama2-linear', 'Llama 2 / Mistral SentencePiece BPE (Prepend + Replace, byte fallback); add_bos_token with an AddedToken bos_token', 1],
    ['tiny-gemma2', 'Gemma SentencePiece BPE (Replace, byte fallback); add_bos_token', 2],
  ];
  for (const [name, what, bos] of cases) {
    it(`${name}: ${what}; decodes the validation texts back exactly`, async () => {
      const tok = await loadTokenizer(read(`${name}/tokenizer.json`), `${name}/tokenizer.json`, read(`${name}/tokenizer_config.json`));
      expect(tok.bos).toBe(bos);
      for (const text of TEXTS) {
        const ids = tok.encode(text);
        expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
        if (bos !== undefined) expect(ids).not.toContain(bos);
        expect(tok.decode(ids)).toBe(text);
      }
    });
  }

  it('byte fallback: characters the vocabulary lacks become their UTF-8 bytes <0xNN>', async () => {
    for (const name of ['tiny-llama2-linear', 'tiny-gemma2']) {
      const json = read(`${name}/tokenizer.json`) as { model: { vocab: Record<string, number> } };
      const tok = await loadTokenizer(json);
      const byte = (b: number): number => json.model.vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`]!;
      // '—' (U+2014) is E2 80 94 in UTF-8; '{' is 7B; neither is in the learned vocabulary.
      expect(tok.encode('a—{').slice(-4)).toEqual([byte(0xe2), byte(0x80), byte(0x94), byte(0x7b)]);
      expect(tok.decode(tok.encode('x—{y'))).toBe('x—{y');
    }
  });

  it('added and special tokens are matched in the raw text', async () => {
    const gemma = await loadTokenizer(read('tiny-gemma2/tokenizer.json'));
    const turn = gemma.encode('<start_of_turn>user\nHi<end_of_turn>');
    expect(turn[0]).toBe(4);
    expect(turn.at(-1)).toBe(5);
    const qwen = await loadTokenizer(read('tiny-qwen3/tokenizer.json'));
    expect(qwen.encode('<|im_start|>user')[0]).toBe(300);
    expect(qwen.encode('a<|endoftext|>b')).toEqual([...qwen.encode('a'), 299, ...qwen.encode('b')]);
  });

  it("Metaspace (prepend_scheme 'first', as newer Llama 2 / Mistral files have it) encodes like the legacy Prepend + Replace normalizers", async () => {
    const legacy = read('tiny-llama2-linear/tokenizer.json');
    const metaspace = { ...legacy, normalizer: null, pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false } };
    const a = await loadTokenizer(legacy);
    const b = await loadTokenizer(metaspace);
    for (const text of [...TEXTS, 'Hello world']) expect(b.encode(text)).toEqual(a.encode(text));
    // Where they differ, as in tokenizers: Metaspace adds no '▁' before a text that starts with a space.
    expect(a.encode('  x')).toEqual([(legacy.model as { vocab: Record<string, number> }).vocab['▁'], ...b.encode('  x')]);
  });

  it('the BOS rule: tokenizer_config.json add_bos_token decides (false overrides the template), else the post-processor; bad settings are named', async () => {
    const llama3 = read('tiny-llama3/tokenizer.json');
    expect((await loadTokenizer(llama3)).bos).toBe(299);
    expect((await loadTokenizer(llama3, 'tokenizer.json', { add_bos_token: false, bos_token: '<|begin_of_text|>' })).bos).toBeUndefined();
    expect((await loadTokenizer(json, 'tokenizer.json', { add_bos_token: true, bos_token: { content: '<|endoftext|>' } })).bos).toBe(299);
    expect((await loadTokenizer(json)).bos).toBeUndefined();
    await expect(loadTokenizer(json, 'm/tokenizer.json', { add_bos_token: true })).rejects.toThrow(/^m\/tokenizer_config\.json: add_bos_token is true but there is no bos_token/);
    await expect(loadTokenizer(json, 'm/tokenizer.json', { add_bos_token: true, bos_token: '<s>' })).rejects.toThrow(/^m\/tokenizer_config\.json: bos_token "<s>" is not a token of tokenizer\.json/);
    await expect(loadTokenizer(json, 'm/tokenizer.json', { add_bos_token: 'yes' })).rejects.toThrow(/'add_bos_token' must be true or false/);
  });
});
