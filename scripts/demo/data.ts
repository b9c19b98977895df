/**
 * `npm run make-demo-data`: the first stage of the demo. Cuts the four corpora into their
 * disjoint parts (scripts/demo/corpora.ts), learns the byte-level BPE tokenizer from the
 * pretraining part (scripts/demo/bpe.ts), and writes the pretraining corpus as token ids for
 * scripts/demo/pretrain.py into .demo-work/data/:
 *   tokenizer.json, config.json   the base model's tokenizer and GPT-2 config
 *   <id>.train.bin, <id>.heldout.bin   uint16 little-endian token ids per distribution, documents
 *                                 joined by <|endoftext|>; the held-out part is the last 2% of documents
 *   meta.json                     sizes, token counts, sampling weights
 * Deterministic: the same files on every run. Options: --quick (a small corpus for a smoke run).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadTokenizer } from '../../src/engine/index.ts';
import { bpeTokenizerJson, trainBpe } from './bpe.ts';
import { loadDistributions } from './corpora.ts';
import { configJson } from './init.ts';
import { CORPUS, QUICK_CORPUS, SHAPE, VOCAB_SIZE, WORK } from './settings.ts';

/** How often pretraining draws a window from each distribution (arithmetic is the easiest). */
const SAMPLING: Record<string, number> = { prose: 0.28, email: 0.28, code: 0.28, arithmetic: 0.16 };
const HELD_OUT = 0.02;

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' } } });
const quick = args.quick ?? false;

async function main(): Promise<void> {
  const t0 = Date.now();
  const out = join(WORK, 'data');
  mkdirSync(out, { recursive: true });
  const dists = loadDistributions(quick ? QUICK_CORPUS : CORPUS);
  const bpe = trainBpe(dists.flatMap((d) => d.pretrain), VOCAB_SIZE);
  if (bpe.vocabSize !== VOCAB_SIZE) throw new Error(`BPE learned ${bpe.vocabSize} tokens, expected ${VOCAB_SIZE}`);
  const tokenizerJson = bpeTokenizerJson(bpe);
  console.log(`BPE: ${bpe.merges.length} merges, vocabulary ${bpe.vocabSize} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  const tokenizer = await loadTokenizer(JSON.parse(tokenizerJson));
  writeFileSync(join(out, 'tokenizer.json'), tokenizerJson);
  writeFileSync(join(out, 'config.json'), `${JSON.stringify(configJson(SHAPE), null, 2)}\n`);
  const ids = (docs: readonly string[]): Uint16Array => {
    const all: number[] = [];
    for (const d of docs) {
      for (const id of tokenizer.encode(d)) all.push(id);
      all.push(bpe.eotId);
    }
    return Uint16Array.from(all);
  };
  const meta = {
    vocabSize: bpe.vocabSize,
    eotId: bpe.eotId,
    quick,
    heldOutFraction: HELD_OUT,
    distributions: dists.map((d) => {
      const cut = Math.min(d.pretrain.length - 1, Math.floor(d.pretrain.length * (1 - HELD_OUT)));
      const train = ids(d.pretrain.slice(0, cut));
      const heldOut = ids(d.pretrain.slice(cut));
      writeFileSync(join(out, `${d.id}.train.bin`), new Uint8Array(train.buffer));
      writeFileSync(join(out, `${d.id}.heldout.bin`), new Uint8Array(heldOut.buffer));
      const bytes = d.pretrain.reduce((n, x) => n + Buffer.byteLength(x), 0);
      const row = { id: d.id, weight: SAMPLING[d.id]!, documents: d.pretrain.length, bytes, trainTokens: train.length, heldOutTokens: heldOut.length, split: d.split.pretrain };
      console.log(`${d.id}: ${row.documents} documents, ${bytes} bytes, ${train.length} + ${heldOut.length} tokens (${(bytes / (train.length + heldOut.length)).toFixed(2)} bytes/token)`);
      return row;
    }),
  };
  writeFileSync(join(out, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
  console.log(`wrote ${out} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

main().catch((e: unknown) => {
  console.error(`make-demo-data failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
