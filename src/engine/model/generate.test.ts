import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { folderFileSet } from '../../node/files.ts';
import { withGpu } from '../../testing/gpu.ts';
import { CancelledError, InputError } from '../errors.ts';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint.ts';
import { forwardWeights } from '../io/weights.ts';
import { loadTokenizer } from '../io/tokenizer.ts';
import { decodeWeights, } from '../kernels/weights.ts';
import type { FloatDType } from '../io/dtypes.ts';
import { generate, TextStream } from './generate.ts';
import { createLoadedModel, uploadCheckpoint } from './load.ts';
import { referenceForward } from './reference.ts';
import { Workspace } from '../workspace/workspace.ts';

const FIXTURES = new URL('../../../e2e/fixtures/', import.meta.url).pathname;

async function fixture(name: string): Promise<Checkpoint> {
  return openCheckpoint(await folderFileSet(`${FIXTURES}${name}`), name);
}

/** The checkpoint's forward tensors as float64 (exact decoding of the stored dtype). */
async function float64Weights(ckpt: Checkpoint): Promise<Map<string, Float64Array>> {
  const out = new Map<string, Float64Array>();
  for (const t of forwardWeights(ckpt.spec)) {
    const ref = ckpt.tensors.get(t.name);
    if (ref) out.set(t.name, decodeWeights(await ckpt.read(t.name), ref.dtype as FloatDType));
  }
  return out;
}

/** Greedy continuation by the float64 reference: full forward over the growing sequence each step. */
function referenceGreedy(ckpt: Checkpoint, w: Map<string, Float64Array>, prompt: number[], n: number): { ids: number[]; margins: number[] } {
  const V = ckpt.spec.vocabSize;
  const seq = [...prompt];
  const ids: number[] = [];
  const margins: number[] = [];
  for (let s = 0; s < n; s++) {
    const { logits } = referenceForward(ckpt.spec, w, seq);
    const last = Array.from(logits.subarray((seq.length - 1) * V, seq.length * V));
    const order = last.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    ids.push(order[0]![1]);
    margins.push(order[0]![0] - order[1]![0]);
    seq.push(order[0]![1]);
  }
  return { ids, margins };
}

const tokenizer = await loadTokenizer(JSON.parse(readFileSync(`${FIXTURES}tiny-gpt2/tokenizer.json`, 'utf8')));
const PROMPT = tokenizer.encode('The lighthouse keeper kept a');

describe('generate on fixture models', () => {
  for (const name of ['tiny-gpt2', 'tiny-llama', 'tiny-qwen2', 'tiny-phi3']) {
    it(`${name}: greedy tokens equal the float64 reference's argmax over 10 steps`, async () => {
      const ckpt = await fixture(name);
      const { got, live } = await withGpu(async (rt) => {
        const before = rt.memory.live;
        const weights = await uploadCheckpoint(rt, ckpt);
        // Only what the forward pass reads: GPT-2's attn.bias masks stay on disk.
        expect([...weights.tensors.keys()].sort()).toEqual(forwardWeights(ckpt.spec).filter((t) => ckpt.tensors.has(t.name)).map((t) => t.name).sort());
        const loaded = await createLoadedModel(rt, weights);
        const streamed: number[] = [];
        const got = await generate(loaded.model, PROMPT, { maxTokens: 10, onToken: (id, i) => streamed.push(i === streamed.length ? id : -1) });
        expect(streamed).toEqual(got.ids);
        loaded.destroy();
        return { got, live: rt.memory.live - before };
      });
      expect(live, 'destroy() frees the weights and the model').toBe(0);
      const want = referenceGreedy(ckpt, await float64Weights(ckpt), PROMPT, 10);
      console.log(`${name}: greedy ${JSON.stringify(got.ids)}; smallest top-2 logit margin in the reference ${Math.min(...want.margins).toExponential(2)}`);
      expect(got.stop).toBe('max-tokens');
      expect(got.promptTokens).toBe(PROMPT.length);
      expect(got.ids).toEqual(want.ids);
    });
  }

  it('stops at a stop token, at the full context, on abort; same seed → same sample', async () => {
    const ckpt = await fixture('tiny-llama');
    await withGpu(async (rt) => {
      const loaded = await createLoadedModel(rt, await uploadCheckpoint(rt, ckpt), { maxContext: 12 });
      const model = loaded.model;
      const prompt = PROMPT.slice(0, 8);
      const greedy = await generate(model, prompt, { maxTokens: 4 });
      const eos = await generate(model, prompt, { maxTokens: 4, stopTokens: [greedy.ids[2]!] });
      expect(eos.stop).toBe('eos');
      expect(eos.ids).toEqual(greedy.ids.slice(0, greedy.ids.indexOf(greedy.ids[2]!)));
      // 8 prompt positions + 4 fed tokens fill the 12-position cache; the 5th token is the last.
      const full = await generate(model, prompt, { maxTokens: 10 });
      expect(full.stop).toBe('context');
      expect(full.ids).toHaveLength(5);

      const sample = (seed: number): Promise<number[]> => generate(model, prompt, { maxTokens: 4, temperature: 1.2, topK: 50, seed }).then((r) => r.ids);
      const a = await sample(11);
      expect(await sample(11)).toEqual(a);
      const others = await Promise.all([12, 13, 14].map(sample));
      expect(others.some((o) => o.join() !== a.join())).toBe(true);

      const controller = new AbortController();
      const seen: number[] = [];
      await expect(
        generate(model, prompt, {
          maxTokens: 4,
          signal: controller.signal,
          onToken: (id) => {
            seen.push(id);
            controller.abort();
          },
        }),
      ).rejects.toBeInstanceOf(CancelledError);
      expect(seen).toHaveLength(1);
      await expect(generate(model, [], { maxTokens: 3 })).rejects.toBeInstanceOf(InputError);
      await expect(generate(model, PROMPT.concat(PROMPT), { maxTokens: 3 })).rejects.toThrow(/maximum context/);
      expect((await generate(model, prompt, { maxTokens: 0 })).ids).toEqual([]);
      loaded.destroy();
    });
  });
});

describe('generate through the Workspace on the families people fine-tune (prompt after the tokenizer\'s BOS, if any)', () => {
  const cases: [string, boolean][] = [
    ['tiny-llama3', true],
    ['tiny-llama2-linear', true],
    ['tiny-qwen2-yarn', false],
    ['tiny-qwen3', false],
    ['tiny-gemma2', true],
    ['tiny-olmo2', false],
  ];
  for (const [name, bos] of cases) {
    it(`${name}: greedy tokens equal the float64 reference's argmax over 8 steps${bos ? ', the BOS first' : ''}`, async () => {
      const ckpt = await fixture(name);
      const result = await withGpu(async (rt) => {
        const ws = new Workspace({ runtime: async () => rt });
        await ws.open(name, name, await folderFileSet(`${FIXTURES}${name}`));
        const recipe = { version: 1 as const, method: 'task_arithmetic' as const, base: name, models: [], parameters: {} };
        return ws.generate({ recipe, prompt: 'The lighthouse keeper kept a', maxTokens: 8, ignoreEos: true });
      });
      const config = `${FIXTURES}${name}/tokenizer_config.json`;
      const tokenizer = await loadTokenizer(JSON.parse(readFileSync(`${FIXTURES}${name}/tokenizer.json`, 'utf8')), 'tokenizer.json', existsSync(config) ? JSON.parse(readFileSync(config, 'utf8')) : undefined);
      const text = tokenizer.encode('The lighthouse keeper kept a');
      expect(result.promptIds).toEqual(bos ? [tokenizer.bos!, ...text] : text);
      const want = referenceGreedy(ckpt, await float64Weights(ckpt), result.promptIds, 8);
      console.log(`${name}: greedy ${JSON.stringify(result.ids)}; smallest top-2 logit margin in the reference ${Math.min(...want.margins).toExponential(2)}`);
      expect(result.ids).toEqual(want.ids);
      expect(result.text).toBe(tokenizer.decode(result.ids));
    });
  }
});

describe('TextStream', () => {
  it('holds back a split UTF-8 sequence and reassembles the text exactly', () => {
    const text = 'café — “quoted” naïve ok';
    const ids = tokenizer.encode(text);
    const stream = new TextStream(tokenizer);
    const parts = ids.map((id) => stream.push(id));
    parts.push(stream.flush());
    expect(parts.join('')).toBe(text);
    expect(parts.some((p) => p.includes('\uFFFD'))).toBe(false);
    const cut = new TextStream(tokenizer);
    const e = tokenizer.encode('é');
    expect(e.length).toBe(2);
    expect(cut.push(e[0]!)).toBe('');
    expect(cut.flush()).toBe('\uFFFD');
  });
});
