/**
 * What the demo is made of, shared by its two TypeScript stages (scripts/demo/data.ts, which
 * prepares the pretraining corpus and the tokenizer, and scripts/make-demo.ts, which fine-tunes
 * and evaluates): the corpus budget per distribution, the tokenizer's size and the model's shape.
 * The pretraining hyperparameters are scripts/demo/pretrain.py's own (recorded in its summary).
 */
import type { CorpusBudget } from './corpora.ts';
import type { Gpt2Shape } from './init.ts';

export const CORPUS: CorpusBudget = { pretrainBytes: 2_000_000, trainBytes: 300_000, validationBytes: 1600, testBytes: 24_000 };
/** A smoke run's corpus (`--quick`): not for committing. */
export const QUICK_CORPUS: CorpusBudget = { pretrainBytes: 100_000, trainBytes: 60_000, validationBytes: 1600, testBytes: 4000 };

/** Byte-level BPE: 256 bytes, merges, `<|endoftext|>`. */
export const VOCAB_SIZE = 1024;

/** GPT-2, 5 layers, width 192, 6 heads of 32, 256 positions (the perplexity context). */
export const SHAPE: Gpt2Shape = { family: 'gpt2', L: 5, C: 192, NH: 6, P: 256, V: VOCAB_SIZE };

/** Where the stages hand over: the prepared data, the pretraining checkpoints and the base. */
export const WORK = new URL('../../.demo-work/', import.meta.url).pathname;
