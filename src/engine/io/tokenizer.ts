/**
 * tokenizer.json (Hugging Face `tokenizers` format) through @huggingface/tokenizers, offline:
 * byte-level BPE (GPT-2, Llama 3, Qwen), SentencePiece-style BPE with byte fallback (Llama 2 and
 * Mistral: Metaspace or Prepend + Replace; Gemma: Replace), added and special tokens matched in
 * the raw text. `encode` never adds special tokens; the BOS a checkpoint's tokenizer puts before
 * a text is `bos` (the rule: tokenizerBos), which perplexity adds as context (model/perplexity.ts)
 * and generation before the prompt.
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
  /** The BOS id transformers' tokenizer would put before a text (tokenizerBos); undefined: none. */
  bos?: number;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Whether the tokenizer starts every text with a BOS token, decided as transformers decides it:
 * tokenizer_config.json's `add_bos_token` when it is there (true: its `bos_token`, a string or
 * an {content} object, as a token of this vocabulary; false: none); otherwise tokenizer.json's
 * post-processor, when it is a TemplateProcessing (alone or in a Sequence) whose single-sequence
 * template begins with a special token (Llama 3's <|begin_of_text|>, Llama 2's <s>). GPT-2's and
 * Qwen's ByteLevel post-processors add nothing.
 */
export function tokenizerBos(json: Json, config: Json | undefined, tokenToId: (token: string) => number | undefined, file: string): number | undefined {
  const configFile = file.replace(/tokenizer\.json$/, 'tokenizer_config.json');
  const addBos = config?.add_bos_token;
  if (addBos !== undefined && addBos !== null) {
    if (typeof addBos !== 'boolean') throw new TokenizerError(`'add_bos_token' must be true or false (got ${JSON.stringify(addBos)})`, { file: configFile });
    if (!addBos) return undefined;
    const token = config?.bos_token;
    const content = isObject(token) ? token.content : token;
    if (typeof content !== 'string') throw new TokenizerError(`add_bos_token is true but there is no bos_token (got ${JSON.stringify(token)})`, { file: configFile });
    const id = tokenToId(content);
    if (id === undefined) throw new TokenizerError(`bos_token ${JSON.stringify(content)} is not a token of tokenizer.json`, { file: configFile });
    return id;
  }
  const processors = (p: unknown): Json[] => (!isObject(p) ? [] : p.type === 'Sequence' && Array.isArray(p.processors) ? p.processors.flatMap(processors) : [p]);
  for (const p of processors(json.post_processor)) {
    if (p.type !== 'TemplateProcessing' || !Array.isArray(p.single)) continue;
    const first: unknown = p.single[0];
    const special = isObject(first) && isObject(first.SpecialToken) ? first.SpecialToken.id : undefined;
    if (typeof special !== 'string') return undefined;
    const listed = isObject(p.special_tokens) && isObject(p.special_tokens[special]) ? p.special_tokens[special].ids : undefined;
    const id = Array.isArray(listed) && typeof listed[0] === 'number' ? listed[0] : tokenToId(special);
    if (id === undefined) throw new TokenizerError(`the post-processor's template starts with ${JSON.stringify(special)}, which is not a token`, { file });
    return id;
  }
  return undefined;
}

function message(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/** `config`: the checkpoint's tokenizer_config.json, when it has one (it decides the BOS). */
export async function loadTokenizer(json: unknown, file = 'tokenizer.json', config?: unknown): Promise<TextTokenizer> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TokenizerError('must be a JSON object', { file });
  const raw = json as Record<string, unknown>;
  if (typeof raw.model !== 'object' || raw.model === null) throw new TokenizerError('has no "model" object (not a Hugging Face tokenizer.json?)', { file });
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
  const bos = tokenizerBos(raw, isObject(config) ? config : undefined, (t) => tokenizer.token_to_id(t), file);
  if (bos !== undefined && bos >= vocabSize) throw new TokenizerError(`BOS id ${bos} is outside the vocabulary (size ${vocabSize})`, { file });
  return {
    vocabSize,
    ...(bos === undefined ? {} : { bos }),
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
