import { describe, expect, it } from 'vitest';
import type { StorageValue } from 'zustand/middleware';
import { CancelledError, InputError, type AdapterSummary, type CheckpointSummary, type TaskScore } from '../engine/index.ts';
import type { EngineApi, RequestOptions, WorkspaceKind } from '../worker/client.ts';
import type { RequestBodies, Results } from '../worker/protocol.ts';
import { comparisonOf, createStudioStore, type PersistedWorkspace } from './index.ts';

const adapter: AdapterSummary = { vendor: 'google', architecture: 'swiftshader', description: '', features: [], maxBufferSize: 1, maxStorageBufferBindingSize: 1 };
const summary = (name: string) => ({ name, parameterCount: 1 }) as unknown as CheckpointSummary;

/** Synthetic perplexity: lowest at ω = 0.5; synthetic acc: highest at ω = 0.2 (so the two targets disagree). */
const ppl = (w: number[], set: number): number => 5 + set + w.reduce((s, x) => s + (x - 0.5) ** 2, 0);
const acc = (w: number[]): number => Math.max(0, 0.9 - w.reduce((s, x) => s + (x - 0.2) ** 2, 0));

function choiceScore(label: string, score: number): TaskScore {
  return { kind: 'choice', label, n: 10, acc: score, accNorm: score / 2, stderr: 0.1, accNormStderr: 0.1, items: [] };
}

function fakeEngine() {
  const sets = new Map<string, number>();
  const scored: { recipe: RequestBodies['score']['recipe']; tasks: string[] }[] = [];
  const evaluated: number[][] = [];
  const weightsOf = (b: { recipe: RequestBodies['score']['recipe'] }): number[] => b.recipe.models.map((m) => m.parameters.weight as number);
  const call = async <K extends WorkspaceKind>(kind: K, body: RequestBodies[K], options: RequestOptions = {}): Promise<Results[K]> => {
    const b = body as never as Record<string, unknown>;
    const answer = (x: unknown): Results[K] => x as Results[K];
    const tick = async (): Promise<void> => {
      await new Promise((r) => setTimeout(r, 1));
      if (options.signal?.aborted) throw new CancelledError();
    };
    switch (kind) {
      case 'load':
        return answer(summary(b.name as string));
      case 'tokenize':
        sets.set(b.key as string, sets.size);
        return answer({ tokens: 100 });
      case 'addTask':
        if ((b.text as string).includes('"gold": 9')) throw new InputError('line 2: "gold" must be an integer index into the 2 choices (0-1), got number 9', { file: b.name as string });
        return answer({ kind: 'choice', items: (b.text as string).trim().split('\n').length });
      case 'evaluate': {
        const e = body as RequestBodies['evaluate'];
        await tick();
        evaluated.push(weightsOf(e));
        return answer({ perplexities: e.sets.map((set) => ({ set, ppl: ppl(weightsOf(e), sets.get(set) ?? 0), nllMean: 0, tokens: 1, predicted: 1 })), mode: 'resident', setupMs: 0, mergeMs: 1, evalMs: 1, totalMs: 2 });
      }
      case 'score': {
        const e = body as RequestBodies['score'];
        await tick();
        scored.push({ recipe: e.recipe, tasks: e.tasks });
        return answer({ scores: e.tasks.map((task) => ({ ...choiceScore(task, acc(weightsOf(e))), task })), mode: 'resident', setupMs: 0, mergeMs: 1, evalMs: 1, totalMs: 2 });
      }
      case 'reference':
        return answer((b.sets as string[]).map((set) => ({ set, ppl: b.checkpoint === 'mix' ? 6 : 9, nllMean: 0, tokens: 1, predicted: 1 })));
      case 'taskReference':
        return answer((b.tasks as string[]).map((task) => ({ ...choiceScore(task, b.checkpoint === 'mix' ? 0.5 : 0.25), task })));
      case 'compat':
        return answer(Object.fromEntries((b.models as string[]).map((m) => [m, []])));
      default:
        return answer(null);
    }
  };
  const engine: EngineApi = {
    init: async () => adapter,
    inspect: async (name) => summary(name),
    onDeviceLost: () => () => true,
    onCrash: () => () => true,
    restart: () => {},
    dispose: () => {},
    call,
  };
  return { engine, scored, evaluated };
}

const settle = () => new Promise((r) => setTimeout(r, 40));
const MC = '{"context": "a", "choices": [" b", " c"], "gold": 0}\n{"context": "d", "choices": [" e", " f"], "gold": 1}\n';

async function workspace(storage?: ReturnType<typeof memoryStorage>) {
  const fake = fakeEngine();
  const store = createStudioStore({ engine: fake.engine, storage });
  await store.restored;
  await store.getState().connectGpu();
  // A file each, so the checkpoints are persisted.
  const file = () => [{ path: 'config.json', file: new File(['{}'], 'config.json') }];
  const base = await store.getState().addCheckpoint('base', file(), { id: 'base', role: 'base' });
  const a = await store.getState().addCheckpoint('a', file(), { id: 'a', role: 'finetune' });
  const mix = await store.getState().addCheckpoint('mix', file(), { id: 'mix', role: 'mixing' });
  const prose = await store.getState().addValidationText('prose', 'one two');
  const code = await store.getState().addValidationText('code', 'three four');
  await settle();
  return { fake, store, base, a, mix, prose, code };
}

function memoryStorage() {
  const map = new Map<string, StorageValue<PersistedWorkspace>>();
  return {
    map,
    getItem: async (name: string) => structuredClone(map.get(name)) ?? null,
    setItem: async (name: string, value: StorageValue<PersistedWorkspace>) => void map.set(name, structuredClone(value)),
    removeItem: async (name: string) => void map.delete(name),
  };
}

describe('task files and scores in the studio store', () => {
  it('a bad line fails its own task file (file, line, problem); the workspace and the other task file stay and are scored after perplexity', async () => {
    const { fake, store, prose, code } = await workspace();
    const good = await store.getState().addTaskFile(prose, 'prose.jsonl', MC);
    const bad = await store.getState().addTaskFile(code, 'code.jsonl', `${MC}{"context": "g", "choices": [" h", " i"], "gold": 9}\n`);
    await settle();
    const s = store.getState();
    expect(s.taskFiles.find((t) => t.id === good)).toMatchObject({ status: 'ready', kind: 'choice', items: 2, setId: prose });
    const failed = s.taskFiles.find((t) => t.id === bad)!;
    expect(failed.status).toBe('failed');
    expect(failed.error?.message).toBe('code.jsonl: line 2: "gold" must be an integer index into the 2 choices (0-1), got number 9');
    expect(s.checkpoints).toHaveLength(3);
    expect(s.validationSets.map((v) => v.status)).toEqual(['ready', 'ready']);
    // Perplexity first, then the task scores of the same recipe (the good file only).
    expect(s.evalStatus).toBe('done');
    expect(s.taskStatus).toBe('done');
    expect(fake.scored.at(-1)?.tasks).toEqual([good]);
    expect(s.taskScores[good]).toMatchObject({ kind: 'choice', score: acc([1]), accNorm: acc([1]) / 2, n: 10 });
    // The data-mixing baseline is compared with, never merged.
    expect(fake.scored.at(-1)?.recipe.models.map((m) => m.model)).toEqual(['a']);
  });

  it('the newest slider position wins for perplexity and task scores alike', async () => {
    const { fake, store, a, prose } = await workspace();
    const task = await store.getState().addTaskFile(prose, 'prose.jsonl', MC);
    await settle();
    for (const w of [0.1, 0.3, 0.6]) store.getState().setCoefficient(a, w);
    await settle();
    const s = store.getState();
    expect(s.perplexities[prose]).toBeCloseTo(ppl([0.6], 0), 12);
    expect(s.taskScores[task]!.score).toBeCloseTo(acc([0.6]), 12);
    // Superseded positions never reached the scoring: they were cancelled during or before perplexity.
    expect(fake.scored.map((x) => x.recipe.models[0]!.parameters.weight)).not.toContain(0.1);
    expect(fake.scored.at(-1)!.recipe.models[0]!.parameters.weight).toBe(0.6);
  });

  it('grid rows record perplexity and task score; the optimizer can maximise the task score instead', async () => {
    const { store, a, prose, code } = await workspace();
    await store.getState().addTaskFile(prose, 'prose.jsonl', MC);
    await store.getState().addTaskFile(code, 'code.jsonl', MC);
    await settle();
    await store.getState().runGrid({ axes: { [a]: { min: 0, max: 1, step: 0.1 } }, sumToOne: false });
    const rows = store.getState().searchRows;
    expect(rows).toHaveLength(11);
    for (const r of rows) {
      expect(r.scores?.[prose]).toBeCloseTo(acc(r.weights), 12);
      expect(r.taskObjective).toBeCloseTo(acc(r.weights), 12);
    }
    const byPpl = rows.reduce((x, y) => (y.objective < x.objective ? y : x));
    const byScore = rows.reduce((x, y) => (y.taskObjective! > x.taskObjective! ? y : x));
    expect([byPpl.weights, byScore.weights]).toEqual([[0.5], [0.2]]);
    store.getState().setSearchTarget('task');
    store.getState().applyRow(byPpl);
    await settle();
    await store.getState().runOptimizer(30);
    const opt = store.getState().searchRows.reduce((x, y) => (y.taskObjective! > x.taskObjective! ? y : x));
    expect(Math.abs(opt.weights[0]! - 0.2)).toBeLessThanOrEqual(0.02);
  });

  it('the DEM-vs-mixing table: mixing and fine-tunes as measured, the perplexity-chosen row, costs from tokens trained', async () => {
    const { store, a, mix, prose, code } = await workspace();
    const t1 = await store.getState().addTaskFile(prose, 'prose.jsonl', MC);
    await store.getState().addTaskFile(code, 'code.jsonl', MC);
    await settle();
    await store.getState().runGrid({ axes: { [a]: { min: 0, max: 1, step: 0.25 } }, sumToOne: false });
    store.getState().setTrainedTokens(a, 1000);
    store.getState().setTrainedTokens(mix, 1000);
    await store.getState().measureComparison();
    await settle();
    const s = store.getState();
    expect(s.comparisonStatus).toBe('done');
    expect(s.taskReferences[`${mix}|${t1}`]).toBe(0.5);
    const t = comparisonOf(s)!;
    expect(t.rows.map((r) => r.kind)).toEqual(['mixing', 'dem', 'fine-tune', 'base']);
    const dem = t.rows[1]!;
    expect(dem.ppl[prose]).toBeCloseTo(ppl([0.5], 0), 12);
    expect(dem.score[prose]).toBeCloseTo(acc([0.5]), 12);
    expect(dem.name).toMatch(/^ω a 0\.50 \(best of 5 searched by perplexity\)$/);
    expect(t.rows[0]!.ppl[code]).toBe(6);
    expect(t.improvement!.ppl[prose]).toBeCloseTo((6 - 5) / 6, 12);
    expect(t.improvement!.score[prose]).toBeCloseTo((acc([0.5]) - 0.5) / 0.5, 12);
    expect(t.costs).toMatchObject({ fineTunes: 1000, mixing: 1000, gridPoints: 5, mixingGrid: 5000, gridOverDem: 5 });
  });

  it('task files and tokens trained survive a reload with their validation sets', async () => {
    const storage = memoryStorage();
    const first = await workspace(storage);
    await first.store.getState().addTaskFile(first.prose, 'prose.jsonl', MC);
    first.store.getState().setTrainedTokens(first.mix, 4096);
    await settle();
    const fake = fakeEngine();
    const again = createStudioStore({ engine: fake.engine, storage });
    await again.restored;
    await settle();
    const s = again.getState();
    expect(s.taskFiles.map((t) => [t.name, t.setId, t.status])).toEqual([['prose.jsonl', first.prose, 'ready']]);
    expect(s.trainedTokens).toEqual({ [first.mix]: 4096 });
    expect(s.checkpoints.find((c) => c.id === first.mix)?.role).toBe('mixing');
    // Removing the validation set removes its task file.
    again.getState().removeValidationText(first.prose);
    expect(again.getState().taskFiles).toEqual([]);
  });
});
