/**
 * A small byte-level BPE tokenizer for the demo models, trained on the pretraining corpus:
 * GPT-2's scheme (the ByteLevel pre-tokenizer splits text with GPT-2's pattern, every piece is
 * its UTF-8 bytes written with the reversible byte -> printable character map, merges join
 * adjacent symbols in rank order), so the studio's tokenizer (`@huggingface/tokenizers`) and the
 * float64 reference (scripts/reference_ppl.py) encode with it unchanged.
 *
 * Ids: bytes 0..255, then each merged symbol in the order it was first made, then `<|endoftext|>` last.
 * No merge touches a digit, so numbers stay one token per digit: the arithmetic distribution
 * keeps a per-digit structure a small model can learn (GPT-2 itself merges digit runs).
 */
import { EOT } from './tokenizer.ts';

/** GPT-2's pre-tokenisation pattern (what the ByteLevel pre-tokenizer applies with use_regex). */
const PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's byte -> unicode map: printable Latin-1 bytes map to themselves, the rest to U+0100.. */
export function byteChars(): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(printable(b) ? b : 256 + extra++);
  return chars;
}

const isDigitByte = (b: number): boolean => b >= 0x30 && b <= 0x39;

export interface BpeResult {
  /** Merges in rank order, as pairs of symbol strings (byte-mapped characters). */
  merges: [string, string][];
  /** Token strings by id (bytes, then merged symbols). */
  tokens: string[];
  /** Vocabulary: bytes, merged symbols, then the end-of-text token. */
  vocabSize: number;
  eotId: number;
}

/**
 * Learns merges from `texts` until the vocabulary holds `vocabSize - 1` symbols: pieces are counted once per distinct piece
 * (weighted by frequency); each round merges the most frequent adjacent pair (ties: the pair
 * whose symbols come first by id), skipping pairs that contain a digit byte.
 */
export function trainBpe(texts: readonly string[], vocabSize: number): BpeResult {
  const nMerges = vocabSize - 257;
  if (nMerges < 0) throw new Error(`vocabSize ${vocabSize} is below 257 (256 bytes + end-of-text)`);
  const counts = new Map<string, number>();
  const enc = new TextEncoder();
  for (const t of texts) for (const m of t.matchAll(PATTERN)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  // Each distinct piece as its symbol ids (bytes first), with its frequency.
  const words: { syms: number[]; n: number }[] = [];
  for (const [piece, n] of counts) words.push({ syms: [...enc.encode(piece)], n });
  // Symbol id -> does it contain a digit byte; its string form for the tokenizer file.
  const hasDigit: boolean[] = Array.from({ length: 256 }, (_, b) => isDigitByte(b));
  const chars = byteChars();
  const text: string[] = chars.slice();
  const idOf = new Map(text.map((t, i) => [t, i]));
  const merges: [string, string][] = [];
  // Two merges can spell the same string ("ab"+"c", "a"+"bc"): both map to one token.
  while (text.length < 256 + nMerges) {
    const pairs = new Map<number, number>();
    for (const w of words) {
      const s = w.syms;
      for (let i = 0; i + 1 < s.length; i++) {
        const a = s[i]!;
        const b = s[i + 1]!;
        if (hasDigit[a] || hasDigit[b]) continue;
        const key = a * 65536 + b;
        pairs.set(key, (pairs.get(key) ?? 0) + w.n);
      }
    }
    let best = -1;
    let bestN = 0;
    for (const [key, n] of pairs) if (n > bestN || (n === bestN && key < best)) [best, bestN] = [key, n];
    if (best < 0) break;
    const a = Math.floor(best / 65536);
    const b = best % 65536;
    const joined = text[a]! + text[b]!;
    let id = idOf.get(joined);
    if (id === undefined) {
      id = text.length;
      idOf.set(joined, id);
      text.push(joined);
      hasDigit.push(false);
    }
    merges.push([text[a]!, text[b]!]);
    for (const w of words) {
      const s = w.syms;
      if (s.length < 2) continue;
      const out: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(id);
          i++;
        } else out.push(s[i]!);
      }
      w.syms = out;
    }
  }
  return { merges, tokens: text, vocabSize: text.length + 1, eotId: text.length };
}

/** tokenizer.json (Hugging Face format) for a trained BPE: ByteLevel with GPT-2's pattern. */
export function bpeTokenizerJson(bpe: BpeResult): string {
  const vocab: Record<string, number> = Object.fromEntries(bpe.tokens.map((t, i) => [t, i]));
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: bpe.eotId, content: EOT, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: bpe.merges.map(([x, y]) => `${x} ${y}`),
    },
  };
  return `${JSON.stringify(json)}\n`;
}
