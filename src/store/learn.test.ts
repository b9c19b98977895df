import { describe, expect, it } from 'vitest';
import { CancelledError, type AdapterSummary, type CheckpointSummary } from '../engine/index.ts';
import type { EngineApi, RequestOptions, WorkspaceKind } from '../worker/client.ts';
import type { RequestBodies, Results } from '../worker/protocol.ts';
import { createStudioStore, pointKey, startLearn, type StudioStore } from './index.ts';

const adapter: AdapterSummary = { vendor: 'google', architecture: 'swiftshader', description: '', features: [], maxBufferSize: 1, maxStorageBufferBindingSize: 1 };

/** Synthetic perplexity of a merge: a bowl per text (text index t moves its bottom). */
const bowl = (weights: readonly number[], t: number): number => 5 + t + weights.reduce((s, w, i) => s + (i + 1) * (w - 0.5 - 0.1 * t) ** 2, 0);

/** An engine answering with `bowl` (weights in the recipe's model order), recording what it was asked. */
function fakeEngine() {
  const texts = new Map<string, number>();
  const names = new Map<string, string>();
  const evaluations: RequestBodies['evaluate'][] = [];
  const loads: string[] = [];
  const generations: RequestBodies['generate'][] = [];
  const references: string[] = [];
  const call = async <K extends WorkspaceKind>(kind: K, body: RequestBodies[K], options: RequestOptions = {}): Promise<Results[K]> => {
    const b = body as never as Record<string, unknown>;
    const answer = (x: unknown): Results[K] => x as Results[K];
    await new Promise((r) => setTimeout(r, 1));
    if (options.signal?.aborted) throw new CancelledError();
    switch (kind) {
      case 'load':
        loads.push(b.key as string);
        names.set(b.key as string, b.name as string);
        return answer({ name: b.name, parameterCount: 1 } as unknown as CheckpointSummary);
      case 'tokenize':
        texts.set(b.key as string, texts.size);
        return answer({ tokens: 3 });
      case 'evaluate': {
        const e = body as RequestBodies['evaluate'];
        evaluations.push(e);
        const weights = e.recipe.models.map((m) => m.parameters.weight as number);
        return answer({ perplexities: e.sets.map((set) => ({ set, ppl: bowl(weights, texts.get(set) ?? 0), nllMean: 0, tokens: 1, predicted: 1 })), mode: 'resident', setupMs: 0, mergeMs: 1, evalMs: 1, totalMs: 2 });
      }
      case 'reference':
        references.push(b.checkpoint as string);
        // A checkpoint's own perplexity: 20 for the mixing baseline, 9 for the others.
        return answer((b.sets as string[]).map((set) => ({ set, ppl: names.get(b.checkpoint as string) === 'mixing' ? 20 : 9, nllMean: 0, tokens: 1, predicted: 1 })));
      case 'generate':
        generations.push(body as RequestBodies['generate']);
        return answer({ text: ` continued (${(body as RequestBodies['generate']).sampling?.seed})`, tokens: 2, ms: 1 });
      case 'compat':
        return answer(Object.fromEntries((b.models as string[]).map((m) => [m, []])));
      default:
        return answer(null);
    }
  };
  const engine: EngineApi = {
    init: async () => adapter,
    inspect: async (name) => ({ name, parameterCount: 1 }) as unknown as CheckpointSummary,
    onDeviceLost: () => () => {},
    onCrash: () => () => {},
    restart: () => {},
    dispose: () => {},
    call,
  };
  return { engine, evaluations, loads, generations, references };
}

/** A demo manifest with two distributions, served with its files by a fake fetch. */
const MANIFEST = {
  distributions: [
    { id: 'prose', title: 'Prose', validation: 'validation/prose.txt', prompt: 'The', task: 'tasks/prose.jsonl' },
    { id: 'code', title: 'Code', validation: 'validation/code.txt', prompt: 'def', task: 'tasks/code.jsonl' },
  ],
  checkpoints: [
    { name: 'base', path: 'base/', role: 'base' },
    { name: 'ft-prose', path: 'ft-prose/', role: 'fine-tune', distribution: 'prose' },
    { name: 'ft-code', path: 'ft-code/', role: 'fine-tune', distribution: 'code' },
    { name: 'mixing', path: 'mixing/', role: 'mixing' },
  ],
};

const fetched: string[] = [];

async function fetcher(url: string): Promise<Response> {
  fetched.push(url);
  if (url.endsWith('manifest.json')) return new Response(JSON.stringify(MANIFEST), { headers: { 'content-type': 'application/json' } });
  return new Response(url.endsWith('.txt') ? 'some words of text' : '{}');
}

async function until(store: StudioStore, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(ok()).toBe(true);
}

async function learnStore() {
  const fake = fakeEngine();
  const store = createStudioStore({ engine: fake.engine });
  await store.getState().connectGpu();
  await startLearn(store, fake.engine, new URL('http://localhost/demo/'), fetcher);
  await until(store, () => store.getState().validationSets.every((v) => v.status === 'ready') && store.getState().evalStatus === 'done');
  return { store, ...fake };
}

describe('learn slice', () => {
  it('opens the demo: fine-tunes by distribution, the texts, and the mixing baseline as a card that is never merged, measured once', async () => {
    const { store, loads, evaluations, references } = await learnStore();
    const d = store.getState().learnDemo!;
    expect(store.getState().learnError).toBeNull();
    expect(d.distributions.map((x) => x.id)).toEqual(['prose', 'code']);
    const cards = store.getState().checkpoints;
    expect(cards.find((c) => c.id === d.vectors.prose)?.name).toBe('ft-prose');
    expect(cards.find((c) => c.id === d.vectors.code)?.name).toBe('ft-code');
    const mixing = cards.find((c) => c.name === 'mixing');
    expect(mixing?.role).toBe('mixing');
    expect(d.mixing).toBe(mixing!.id);
    expect(loads).toContain(mixing!.id);
    expect(evaluations.every((e) => e.recipe.models.every((m) => m.model !== mixing!.id))).toBe(true);
    expect(store.getState().validationSets.find((v) => v.id === d.sets.code)?.name).toBe('code');
    // The workspace measures the mixing card's own perplexity; the lesson takes it from there.
    await until(store, () => d.distributions.every((x) => store.getState().references[`${mixing!.id}|${d.sets[x.id]}`] !== undefined));
    await store.getState().learnLoadMixing();
    expect(store.getState().learnMixing).toEqual({ prose: 20, code: 20 });
    expect(references.filter((r) => r === mixing!.id)).toHaveLength(1);
    // The lesson shows no task scores: the demo's task files are neither fetched nor added.
    expect(store.getState().taskFiles).toEqual([]);
    expect(fetched.filter((u) => u.includes('/tasks/'))).toEqual([]);
  });

  it('measures a merge by distribution weights once: absent weights are 0, a repeat is not sent again', async () => {
    const { store, evaluations } = await learnStore();
    const before = evaluations.length;
    const p = await store.getState().learnMeasure({ code: 0.5 });
    expect(p?.weights).toEqual({ prose: 0, code: 0.5 });
    // Text 0 is prose, text 1 code; the recipe lists prose's fine-tune first.
    expect(p?.ppl).toEqual({ prose: bowl([0, 0.5], 0), code: bowl([0, 0.5], 1) });
    expect(p?.mean).toBeCloseTo((bowl([0, 0.5], 0) + bowl([0, 0.5], 1)) / 2, 12);
    expect(evaluations.length).toBe(before + 1);
    expect(evaluations.at(-1)!.recipe.models.map((m) => m.parameters.weight)).toEqual([0, 0.5]);
    const again = await store.getState().learnMeasure({ prose: 0, code: 0.5 });
    expect(again).toBe(p);
    expect(evaluations.length).toBe(before + 1);
    expect(store.getState().learnPoints[pointKey(['prose', 'code'], { code: 0.5 })]).toBe(p);
    expect(store.getState().learnEvaluations).toBeGreaterThan(0);
  });

  it('shares the checkpoint a merge is: every ω = 0 is the base, one ω = 1 that fine-tune (their own perplexity, no merge sent)', async () => {
    const { store, evaluations, references } = await learnStore();
    const d = store.getState().learnDemo!;
    const base = store.getState().checkpoints.find((c) => c.role === 'base')!.id;
    // Once the workspace has measured each card's own perplexity (as it does after loading).
    await until(store, () => d.distributions.every((x) => [base, d.vectors.code].every((c) => store.getState().references[`${c}|${d.sets[x.id]}`] !== undefined)));
    const before = evaluations.length;
    const asked = references.length;
    const counted = store.getState().learnEvaluations;
    const zero = await store.getState().learnMeasure({ code: 0 });
    const code = await store.getState().learnMeasure({ code: 1 });
    expect(evaluations.length).toBe(before);
    expect(store.getState().learnEvaluations).toBe(counted);
    // The fake engine gives every checkpoint other than the mixing card 9 on every text (bowl() for merges).
    expect(zero).toMatchObject({ weights: { prose: 0, code: 0 }, ppl: { prose: 9, code: 9 }, mean: 9, ms: 0 });
    expect(code).toMatchObject({ weights: { prose: 0, code: 1 }, ppl: { prose: 9, code: 9 }, mean: 9, ms: 0 });
    const refs = store.getState().references;
    for (const x of d.distributions) {
      expect(refs[`${base}|${d.sets[x.id]}`]).toBe(9);
      expect(refs[`${d.vectors.code}|${d.sets[x.id]}`]).toBe(9);
    }
    expect(references.length).toBe(asked);
    // Two vectors at 1, or one at another weight, are merges.
    await store.getState().learnMeasure({ prose: 1, code: 0.5 });
    expect(evaluations.length).toBe(before + 1);
  });

  it("keeps the workspace's own first merge (every ω = 1) instead of measuring it again", async () => {
    const { store, evaluations } = await learnStore();
    const ones = store.getState().learnPoints[pointKey(['prose', 'code'], { prose: 1, code: 1 })];
    expect(ones?.ppl).toEqual({ prose: bowl([1, 1], 0), code: bowl([1, 1], 1) });
    const before = evaluations.length;
    expect(await store.getState().learnMeasure({ prose: 1, code: 1 })).toBe(ones);
    expect(evaluations.length).toBe(before);
  });

  it('runs points in order, reuses measured ones, and a newer run cancels an older one', async () => {
    const { store, evaluations } = await learnStore();
    await store.getState().learnMeasure({ prose: 0.5 });
    const before = evaluations.length;
    await store.getState().learnRun('sweep', [{ prose: 0 }, { prose: 0.5 }, { prose: 1.5 }, { prose: 2 }]);
    const run = store.getState().learnRuns.sweep!;
    expect(run.status).toBe('done');
    expect(run.points.map((p) => p.weights.prose)).toEqual([0, 0.5, 1.5, 2]);
    // ω = 0 is the base's own perplexity and 0.5 was measured before: 1.5 and 2 are new.
    expect(evaluations.length).toBe(before + 2);
    const first = store.getState().learnRun('long', [{ code: 0.1 }, { code: 0.2 }, { code: 0.3 }, { code: 0.4 }]);
    const second = store.getState().learnRun('short', [{ code: 0.9 }]);
    await Promise.all([first, second]);
    expect(store.getState().learnRuns.long!.status).toBe('cancelled');
    expect(store.getState().learnRuns.long!.points.length).toBeLessThan(4);
    expect(store.getState().learnRuns.short!.status).toBe('done');
    // The same run asked for twice (a component's effect running twice): the replaced one neither
    // ends nor feeds the newer one's entry, which finishes with every point once.
    const a = store.getState().learnRun('twice', [{ code: 1.1 }, { code: 1.2 }]);
    const b = store.getState().learnRun('twice', [{ code: 1.1 }, { code: 1.2 }]);
    await Promise.all([a, b]);
    expect(store.getState().learnRuns.twice!.status).toBe('done');
    expect(store.getState().learnRuns.twice!.points.map((p) => p.weights.code)).toEqual([1.1, 1.2]);
  });

  it('Nelder–Mead lowers the mean within its budget, counting every merge', async () => {
    const { store } = await learnStore();
    const start = { prose: 1.5, code: 1.5 };
    const s0 = (await store.getState().learnMeasure(start))!.mean;
    await store.getState().learnOptimize('opt', start, 15);
    const run = store.getState().learnRuns.opt!;
    expect(run.status).toBe('done');
    expect(run.points.length).toBeGreaterThan(3);
    expect(run.points.length).toBeLessThanOrEqual(15);
    expect(Math.min(...run.points.map((p) => p.mean))).toBeLessThan(s0 - 0.5);
  });

  it('generates with the given sampling, from a merge or from the mixing baseline', async () => {
    const { store, generations } = await learnStore();
    await store.getState().learnGenerate('a', { prose: 1 }, 'The', { maxTokens: 5, temperature: 0.8, topK: 40, seed: 7 });
    await store.getState().learnGenerate('b', 'mixing', 'The', { maxTokens: 5, temperature: 0.8, topK: 40, seed: 7 });
    expect(store.getState().learnGenerations.a).toEqual({ status: 'done', text: ' continued (7)' });
    expect(generations[0]).toMatchObject({ prompt: 'The', maxTokens: 5, sampling: { temperature: 0.8, topK: 40, seed: 7 } });
    expect(generations[0]!.recipe.models.map((m) => m.parameters.weight)).toEqual([1, 0]);
    expect(generations[1]!.recipe).toMatchObject({ base: 'demo-mixing', models: [] });
    // Done once: asking again sends nothing.
    await store.getState().learnGenerate('a', { prose: 1 }, 'The', { maxTokens: 5, temperature: 0.8, topK: 40, seed: 7 });
    expect(generations).toHaveLength(2);
    // Asked twice while in flight (an effect run twice): one request, done.
    const c = { maxTokens: 5, temperature: 0.8, topK: 40, seed: 8 };
    await Promise.all([store.getState().learnGenerate('c', { code: 1 }, 'def', c), store.getState().learnGenerate('c', { code: 1 }, 'def', c)]);
    expect(generations).toHaveLength(3);
    expect(store.getState().learnGenerations.c).toEqual({ status: 'done', text: ' continued (8)' });
  });
});
