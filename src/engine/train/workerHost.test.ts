import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createTrainHost } from '../../worker/trainHost.ts';
import type { TrainReply } from '../../worker/trainProtocol.ts';
import type { TrainSettings } from './index.ts';
import { nodeOrt } from './testing.ts';
import { openAdapter } from '../io/adapter.ts';
import { bytesSource } from '../io/source.ts';

// The training Worker host (src/worker/trainHost.ts) driven in Node; it lives here because
// src/worker's lint rules keep Node APIs (needed to read the fixture) out of that folder.
const DIR = new URL('../../../e2e/fixtures/tiny-gpt2/', import.meta.url).pathname;
const files = readdirSync(DIR).map((path) => ({ path, file: new File([readFileSync(DIR + path)], path) }));
const text = readFileSync('/usr/share/common-licenses/Apache-2.0', 'utf8').slice(0, 3000);
const settings: TrainSettings = {
  steps: 4, batchSize: 2, seqLen: 16, lr: 1e-3, warmupSteps: 1, weightDecay: 0, trainable: { kind: 'no-embeddings' },
  heldOutFraction: 0.1, evalEvery: 2, snapshotEvery: 2, seed: 1,
};

describe('training Worker host', () => {
  it('streams status, progress and snapshots, then transfers the checkpoint files', async () => {
    const replies: TrainReply[] = [];
    const host = createTrainHost(nodeOrt, (r) => void replies.push(r));
    await host.handle({ kind: 'train-start', id: 1, name: 'tiny-gpt2', files, text, settings });
    const kinds = replies.map((r) => (r.kind === 'train-status' ? r.stage : r.kind));
    expect(kinds.slice(0, 4)).toEqual(['loading', 'tokenizing', 'building', 'training']);
    expect(kinds.filter((k) => k === 'train-progress').length).toBe(4);
    expect(kinds.filter((k) => k === 'train-snapshot').length).toBe(2);
    const done = replies.at(-1)!;
    expect(done.kind).toBe('train-done');
    if (done.kind !== 'train-done') return;
    expect(done.files.map((f) => f.path).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    expect(done.heldOut.length).toBe(2);
  });

  it('a LoRA run snapshots and ends with PEFT adapter folders that read back over the base', async () => {
    const replies: TrainReply[] = [];
    const host = createTrainHost(nodeOrt, (r) => void replies.push(r));
    const lora: TrainSettings = { ...settings, trainable: { kind: 'lora', rank: 2, alpha: 4, targets: ['c_attn'] } };
    await host.handle({ kind: 'train-start', id: 4, name: 'tiny-gpt2', files, text, settings: lora });
    const adapterFiles = ['adapter_config.json', 'adapter_model.safetensors'];
    const snaps = replies.filter((r) => r.kind === 'train-snapshot');
    expect(snaps.map((r) => r.kind === 'train-snapshot' && r.files.map((f) => f.path).sort())).toEqual([adapterFiles, adapterFiles]);
    // Only the factors travel with a snapshot (2 layers × A and B of c_attn).
    expect(snaps.map((r) => r.kind === 'train-snapshot' && Object.keys(r.weights).length)).toEqual([4, 4]);
    const done = replies.at(-1)!;
    if (done.kind !== 'train-done') throw new Error(`ended with ${done.kind}`);
    expect(done.files.map((f) => f.path).sort()).toEqual(adapterFiles);
    const adapter = await openAdapter(new Map(done.files.map((f) => [f.path, bytesSource(f.bytes, f.path)])), 'lora');
    expect(adapter.targets.map((t) => t.module)).toEqual(['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn']);
    expect(adapter.config.base_model_name_or_path).toBe('tiny-gpt2');
  });

  it('ends a cancelled run with a cancelled error and no files', async () => {
    const replies: TrainReply[] = [];
    const host = createTrainHost(nodeOrt, (r) => {
      replies.push(r);
      if (r.kind === 'train-progress') void host.handle({ kind: 'train-cancel', target: 2 });
    });
    await host.handle({ kind: 'train-start', id: 2, name: 'tiny-gpt2', files, text, settings });
    const last = replies.at(-1)!;
    expect(last.kind === 'train-error' && last.error.code).toBe('cancelled');
    expect(replies.some((r) => r.kind === 'train-done')).toBe(false);
  });

  it('reports empty text as an input error', async () => {
    const replies: TrainReply[] = [];
    const host = createTrainHost(nodeOrt, (r) => void replies.push(r));
    await host.handle({ kind: 'train-start', id: 3, name: 'tiny-gpt2', files, text: '', settings });
    const last = replies.at(-1)!;
    expect(last.kind === 'train-error' && last.error.code).toBe('input');
  });
});
