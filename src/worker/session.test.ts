/* eslint-disable no-restricted-imports -- the test reads the fixture folders from disk (the Worker itself never does) */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { folderFileSet } from '../node/files.ts';
import { CancelledError, parseRecipe, type GpuRuntime, type MergeRecipe } from '../engine/index.ts';
import { testRuntime } from '../testing/gpu.ts';
import { WorkspaceSession } from './session.ts';

const FIXTURES = join(import.meta.dirname, '../../e2e/fixtures');
const TEXT = 'The lighthouse keeper kept a ledger of every ship that passed the point. Most nights the entries were short.';

async function session(rt: GpuRuntime): Promise<WorkspaceSession> {
  const s = new WorkspaceSession({ runtime: async () => rt });
  const signal = new AbortController().signal;
  for (const name of ['tiny-gpt2', 'tiny-gpt2-ft-a', 'tiny-gpt2-ft-b']) await s.load(name, name, await folderFileSet(join(FIXTURES, name)), signal);
  await s.tokenize('prose', 'prose', TEXT, 'tiny-gpt2');
  return s;
}

const recipe = (a: number, b: number): MergeRecipe =>
  parseRecipe({ version: 1, method: 'task_arithmetic', base: 'tiny-gpt2', models: [{ model: 'tiny-gpt2-ft-a', parameters: { weight: a } }, { model: 'tiny-gpt2-ft-b', parameters: { weight: b } }] });

describe('Worker workspace session', () => {
  it('keeps the resident merge between requests and matches the streaming merge exactly', async () => {
    const rt = await testRuntime();
    const s = await session(rt);
    const signal = new AbortController().signal;
    const first = await s.evaluate({ recipe: recipe(0.3, 1), sets: ['prose'] }, signal);
    expect(first.mode).toBe('resident');
    expect(first.setupMs).toBeGreaterThan(0);
    const second = await s.evaluate({ recipe: recipe(0.5, -0.25), sets: ['prose'] }, signal);
    expect(second.mode).toBe('resident');
    expect(second.setupMs).toBe(0);
    // A runtime whose budget cannot hold base + Δ merges tensor by tensor instead: same numbers.
    const small = await testRuntime({ memoryBudget: 600_000 });
    try {
      const streaming = await (await session(small)).evaluate({ recipe: recipe(0.5, -0.25), sets: ['prose'] }, signal);
      expect(streaming.mode).toBe('streaming');
      expect(streaming.perplexities[0]!.ppl).toBe(second.perplexities[0]!.ppl);
      console.log(`resident merge ${second.mergeMs.toFixed(1)} ms vs streaming ${streaming.mergeMs.toFixed(1)} ms (SwiftShader, tiny-gpt2, 2 fine-tunes)`);
    } finally {
      small.destroy();
    }
    // Going back to the first weights gives the first numbers (outputs are overwritten in place).
    const again = await s.evaluate({ recipe: recipe(0.3, 1), sets: ['prose'] }, signal);
    expect(again.perplexities).toEqual(first.perplexities);
    // ω = 0 is the base: its own reference perplexity.
    const zero = await s.evaluate({ recipe: recipe(0, 0), sets: ['prose'] }, signal);
    const [ref] = await s.reference('tiny-gpt2', ['prose'], undefined, signal);
    expect(zero.perplexities[0]!.ppl).toBe(ref!.ppl);
  });

  it('scores task files on the resident merge (ω = 0 gives the base its own scores) and reports a bad line', async () => {
    const rt = await testRuntime();
    const s = await session(rt);
    const signal = new AbortController().signal;
    const task = '{"context": "The lighthouse keeper kept a", "choices": [" ledger", " ship", " light"], "gold": 0}\n{"context": "Most nights the entries were", "choices": [" short", " long"], "gold": 0}\n';
    expect(await s.addTask('cloze', 'cloze.jsonl', task, 'tiny-gpt2')).toEqual({ kind: 'choice', items: 2 });
    await expect(s.addTask('bad', 'bad.jsonl', `${task}{"context": "x", "gold": 0}\n`, 'tiny-gpt2')).rejects.toThrow(/^bad\.jsonl: line 3: "choices" must be an array of at least 2 strings, got nothing$/);
    await s.evaluate({ recipe: recipe(0.5, -0.25), sets: ['prose'] }, signal);
    const merged = await s.score({ recipe: recipe(0.5, -0.25), tasks: ['cloze'] }, signal);
    expect(merged.mode).toBe('resident');
    expect(merged.scores.map((x) => [x.task, x.kind, x.n])).toEqual([['cloze', 'choice', 2]]);
    const zero = await s.score({ recipe: recipe(0, 0), tasks: ['cloze'] }, signal);
    const [own] = await s.taskReference('tiny-gpt2', ['cloze'], undefined, signal);
    expect(zero.scores[0]).toEqual(own);
    expect(merged.scores[0]).not.toEqual(own);
  });

  it('a cancelled evaluation stops and the next one runs', async () => {
    const rt = await testRuntime();
    const s = await session(rt);
    const stale = new AbortController();
    const first = s.evaluate({ recipe: recipe(0.1, 0.2), sets: ['prose'] }, stale.signal);
    stale.abort();
    const second = s.evaluate({ recipe: recipe(0.7, 0.2), sets: ['prose'] }, new AbortController().signal);
    await expect(first).rejects.toBeInstanceOf(CancelledError);
    expect((await second).perplexities[0]!.ppl).toBeGreaterThan(1);
  });

  it('refuses empty text and unknown keys with clear messages; exports a zip', async () => {
    const rt = await testRuntime();
    const s = await session(rt);
    await expect(s.tokenize('e', 'empty.txt', ' \n', 'tiny-gpt2')).rejects.toThrow(/empty/);
    await expect(s.evaluate({ recipe: recipe(1, 1), sets: ['nope'] }, new AbortController().signal)).rejects.toThrow(/not tokenized/);
    const out = await s.export('tiny-gpt2', recipe(1, 1), 'zip', { 'dem-recipe.json': '{}' }, new AbortController().signal);
    expect(out.files).toEqual(['model.safetensors', 'config.json', 'tokenizer.json', 'dem-recipe.json']);
    expect(out.zip?.size).toBeGreaterThan(out.bytes);
  });
});
