/**
 * A byte-level tokenizer.json for the demo models: the 256 bytes are tokens 0..255 (token id =
 * byte value), written with GPT-2's reversible byte -> printable character map so the standard
 * ByteLevel pre-tokenizer and decoder apply; no merges; `<|endoftext|>` is special token 256.
 * Every UTF-8 text round-trips, and perplexity is per byte.
 */
export const BYTE_VOCAB = 257;
export const EOT = '<|endoftext|>';
export const EOT_ID = 256;

/** GPT-2's byte -> unicode map: printable Latin-1 bytes map to themselves, the rest to U+0100.. */
function byteChars(): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(printable(b) ? b : 256 + extra++);
  return chars;
}

export function byteTokenizerJson(): string {
  const vocab: Record<string, number> = {};
  byteChars().forEach((c, b) => {
    vocab[c] = b;
  });
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: EOT_ID, content: EOT, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
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
      merges: [],
    },
  };
  return `${JSON.stringify(json, null, 2)}\n`;
}
