/**
 * tokenizer.json (Hugging Face `tokenizers` format) through @huggingface/tokenizers, offline.
 * Perplexity encodes without special tokens (model/perplexity.ts), so `encode` never adds BOS/EOS.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { TokenizerError } from '../errors.ts';

export interface TextTokenizer {
  /** Token ids of `text`, no special tokens added. */
  encode(text: string): number[];
  /** Text of `ids`, special tokens kept, no clean-up of spaces (so decode(encode(t)) === t for byte-level BPE). */
  decode(ids: readonly number[]): string;
  /** 1 + the largest id in the vocabulary (added tokens included). */
  vocabSize: number;
}

function message(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * Room above the vocabulary for ids no entry uses (some exporters leave a gap before the added
 * tokens). Anything further is refused: the tokenizer library allocates and walks every id below
 * the largest one, so a single id of 1e9 would cost minutes and gigabytes.
 */
const ID_SLACK = 1024;

/** Every token id tokenizer.json states is a non-negative integer below entries + ID_SLACK; throws TokenizerError naming the first that is not. */
function checkIds(raw: Record<string, unknown>, file: string): void {
  const model = raw.model as Record<string, unknown>;
  const vocab = model.vocab;
  const added = Array.isArray(raw.added_tokens) ? (raw.added_tokens as unknown[]) : [];
  const entries = (Array.isArray(vocab) ? vocab.length : typeof vocab === 'object' && vocab !== null ? Object.keys(vocab).length : 0) + added.length;
  const limit = entries + ID_SLACK;
  const check = (id: unknown, where: string): void => {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw new TokenizerError(`${where}: token id ${JSON.stringify(id)} is not a non-negative integer`, { file });
    if (id >= limit) throw new TokenizerError(`${where}: token id ${id} is far beyond the vocabulary (${entries} entries): ids must lie below ${limit}`, { file });
  };
  if (typeof vocab === 'object' && vocab !== null && !Array.isArray(vocab)) {
    for (const [token, id] of Object.entries(vocab)) check(id, `model.vocab[${JSON.stringify(token.slice(0, 40))}]`);
  }
  added.forEach((t, i) => {
    if (typeof t !== 'object' || t === null) throw new TokenizerError(`added_tokens[${i}] is not an object`, { file });
    check((t as Record<string, unknown>).id, `added_tokens[${i}]`);
  });
  if (model.unk_id !== undefined && model.unk_id !== null) check(model.unk_id, 'model.unk_id');
}

export async function loadTokenizer(json: unknown, file = 'tokenizer.json'): Promise<TextTokenizer> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TokenizerError('must be a JSON object', { file });
  const raw = json as Record<string, unknown>;
  if (typeof raw.model !== 'object' || raw.model === null) throw new TokenizerError('has no "model" object (not a Hugging Face tokenizer.json?)', { file });
  checkIds(raw, file);
  // The library iterates added_tokens unconditionally.
  const normalised = Array.isArray(raw.added_tokens) ? raw : { ...raw, added_tokens: [] };
  let tokenizer: Tokenizer;
  let vocabSize = 0;
  try {
    tokenizer = new Tokenizer(normalised, {});
    for (const id of tokenizer.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);
  } catch (cause) {
    throw new TokenizerError(`cannot load: ${message(cause)}`, { file, cause });
  }
  if (vocabSize === 0) throw new TokenizerError('has an empty vocabulary', { file });
  return {
    vocabSize,
    encode(text: string): number[] {
      let ids: number[];
      try {
        ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
      } catch (cause) {
        throw new TokenizerError(`cannot encode text: ${message(cause)}`, { file, cause });
      }
      const bad = ids.findIndex((id) => !Number.isInteger(id));
      if (bad >= 0) throw new TokenizerError(`text has a piece with no token id and the tokenizer has no unk token (at token ${bad})`, { file });
      return ids;
    },
    decode(ids: readonly number[]): string {
      for (const id of ids) {
        if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new TokenizerError(`token id ${id} is outside the vocabulary (size ${vocabSize})`, { file });
      }
      if (ids.length === 0) return ''; // the library rejects an empty list
      try {
        return tokenizer.decode([...ids], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      } catch (cause) {
        throw new TokenizerError(`cannot decode: ${message(cause)}`, { file, cause });
      }
    },
  };
}
