import { describe, expect, it, vi } from 'vitest';
import { CancelledError, GpuDeviceLostError, InputError, parseMergekitYaml, parseRecipe, SafetensorsError, type AdapterSummary, type CheckpointSummary } from '../engine/index.ts';
import type { EngineApi, RequestOptions } from '../worker/client.ts';
import { WorkerCrashedError, type EngineError } from '../worker/errors.ts';
import type { FileEntry } from '../worker/protocol.ts';
import type { StorageValue } from 'zustand/middleware';
import type { RequestBodies, Results } from '../worker/protocol.ts';
import type { WorkspaceKind } from '../worker/client.ts';
import { COALESCE_MS, createStudioStore, defaultCoefficient, recipeFromHash, recipeHash, selectCheckpoints, selectGpuStatus, selectNotifications, type PersistedWorkspace } from './index.ts';
import { PERSIST_KEY } from './persist.ts';

const adapter: AdapterSummary = { vendor: 'google', architecture: 'swiftshader', description: '', features: [], maxBufferSize: 1, maxStorageBufferBindingSize: 1 };

/** Synthetic perplexity of a merge: a bowl around `optimum` per text (set index i shifts it). */
export function bowl(weights: number[], set: number): number {
  return 5 + set + weights.reduce((s, w, i) => s + (i + 1) * (w - 0.5 - 0.1 * set) ** 2, 0);
}

/** A scripted engine: load answers per checkpoint name; evaluate answers with `bowl`. */
function fakeEngine(answers: Record<string, (signal?: AbortSignal) => Promise<CheckpointSummary>>) {
  const texts = new Map<string, number>();
  const evaluations: RequestBodies['evaluate'][] = [];
  const call = async <K extends WorkspaceKind>(kind: K, body: RequestBodies[K], options: RequestOptions = {}): Promise<Results[K]> => {
    const b = body as never as Record<string, unknown>;
    const answer = (x: unknown): Results[K] => x as Results[K];
    switch (kind) {
      case 'load': {
        const fn = answers[b.name as string];
        if (!fn) throw new Error(`no scripted answer for ${String(b.name)}`);
        return answer(await fn(options.signal));
      }
      case 'tokenize': {
        const text = b.text as string;
        texts.set(b.key as string, texts.size);
        return answer({ tokens: text.split(/\s+/).length });
      }
      case 'evaluate': {
        const e = body as RequestBodies['evaluate'];
        evaluations.push(e);
        await new Promise((r) => setTimeout(r, 1));
        if (options.signal?.aborted) throw new CancelledError();
        const weights = e.recipe.models.map((m) => m.parameters.weight as number);
        return answer({
          perplexities: e.sets.map((set) => ({ set, ppl: bowl(weights, texts.get(set) ?? 0), nllMean: 0, tokens: 1, predicted: 1 })),
          mode: 'resident', setupMs: 0, mergeMs: 1, evalMs: 1, totalMs: 2,
        });
      }
      case 'reference':
        return answer((b.sets as string[]).map((set) => ({ set, ppl: 9, nllMean: 0, tokens: 1, predicted: 1 })));
      case 'compat':
        return answer(Object.fromEntries((b.models as string[]).map((m) => [m, []])));
      default:
        return answer(null);
    }
  };
  const lost = new Set<(e: EngineError) => void>();
  const crash = new Set<(e: WorkerCrashedError) => void>();
  let restarts = 0;
  const engine: EngineApi = {
    init: async () => adapter,
    inspect: (name: string, _files: FileEntry[], options: RequestOptions = {}) => {
      const answer = answers[name];
      if (!answer) throw new Error(`no scripted answer for ${name}`);
      return answer(options.signal);
    },
    onDeviceLost: (l) => (lost.add(l), () => lost.delete(l)),
    onCrash: (l) => (crash.add(l), () => crash.delete(l)),
    restart: () => void (restarts += 1),
    dispose: () => {},
    call,
  };
  return {
    engine,
    evaluations,
    loseDevice: (e: EngineError) => lost.forEach((l) => l(e)),
    crash: (e: WorkerCrashedError) => crash.forEach((l) => l(e)),
    restarts: () => restarts,
  };
}

const summary = (name: string) => ({ name, parameterCount: 123 }) as unknown as CheckpointSummary;

describe('studio store', () => {
  it('connects the GPU and records the adapter', async () => {
    const store = createStudioStore(fakeEngine({}));
    expect(selectGpuStatus(store.getState())).toBe('idle');
    await store.getState().connectGpu();
    expect(selectGpuStatus(store.getState())).toBe('ready');
    expect(store.getState().adapter?.architecture).toBe('swiftshader');
  });

  it('keeps loaded checkpoints when a later one fails, and reports the file', async () => {
    const store = createStudioStore(
      fakeEngine({
        good: async () => summary('good'),
        bad: async () => {
          throw new SafetensorsError('header is cut short', { file: 'model.safetensors' });
        },
      }),
    );
    await store.getState().addCheckpoint('good', []);
    await store.getState().addCheckpoint('bad', []);
    const [good, bad] = selectCheckpoints(store.getState());
    expect(good).toMatchObject({ name: 'good', status: 'ready', role: 'base' });
    expect(good?.summary?.parameterCount).toBe(123);
    expect(bad).toMatchObject({ name: 'bad', status: 'failed', role: 'finetune' });
    expect(bad?.error?.file).toBe('model.safetensors');
    const [notice] = selectNotifications(store.getState());
    expect(notice).toMatchObject({ level: 'error', file: 'model.safetensors' });
    expect(notice?.message).toContain('header is cut short');
    store.getState().dismiss(notice?.id ?? '');
    expect(selectNotifications(store.getState())).toEqual([]);
    expect(selectCheckpoints(store.getState())).toHaveLength(2);
  });

  it('drops a cancelled checkpoint silently', async () => {
    const store = createStudioStore(
      fakeEngine({
        slow: (signal) => new Promise((_r, reject) => signal?.addEventListener('abort', () => reject(new CancelledError()))),
      }),
    );
    const done = store.getState().addCheckpoint('slow', []);
    const [entry] = selectCheckpoints(store.getState());
    expect(entry?.status).toBe('inspecting');
    store.getState().cancelCheckpoint(entry?.id ?? '');
    await done;
    expect(selectCheckpoints(store.getState())).toEqual([]);
    expect(selectNotifications(store.getState())).toEqual([]);
  });

  it('keeps one base: promoting a fine-tune demotes the old base', async () => {
    const store = createStudioStore(fakeEngine({ a: async () => summary('a'), b: async () => summary('b') }));
    const a = await store.getState().addCheckpoint('a', []);
    const b = await store.getState().addCheckpoint('b', []);
    store.getState().setRole(b, 'base');
    const roles = Object.fromEntries(selectCheckpoints(store.getState()).map((c) => [c.id, c.role]));
    expect(roles).toEqual({ [a]: 'finetune', [b]: 'base' });
    store.getState().removeCheckpoint(a);
    expect(selectCheckpoints(store.getState()).map((c) => c.id)).toEqual([b]);
  });

  it('marks the GPU lost or the engine crashed, keeps checkpoints, and restarts a crashed engine on reconnect', async () => {
    const fake = fakeEngine({ a: async () => summary('a') });
    const store = createStudioStore(fake);
    await store.getState().connectGpu();
    await store.getState().addCheckpoint('a', []);
    fake.loseDevice(new GpuDeviceLostError('GPU device lost (unknown): gone'));
    expect(selectGpuStatus(store.getState())).toBe('lost');
    fake.crash(new WorkerCrashedError('The engine Worker crashed'));
    expect(selectGpuStatus(store.getState())).toBe('crashed');
    expect(selectNotifications(store.getState()).map((n) => n.title)).toEqual(['GPU device lost', 'Engine stopped']);
    expect(selectCheckpoints(store.getState())).toHaveLength(1);
    await store.getState().connectGpu();
    expect(fake.restarts()).toBe(1);
    expect(selectGpuStatus(store.getState())).toBe('ready');
  });
});

const settle = () => new Promise((r) => setTimeout(r, 30));

async function workspace(storage?: ReturnType<typeof memoryStorage>) {
  const fake = fakeEngine({ base: async () => summary('base'), a: async () => summary('a'), b: async () => summary('b') });
  const store = createStudioStore({ ...fake, storage });
  await store.restored;
  return { fake, store };
}

function memoryStorage(readDelayMs = 0) {
  const map = new Map<string, StorageValue<PersistedWorkspace>>();
  const writes: StorageValue<PersistedWorkspace>[] = [];
  return {
    map,
    writes,
    getItem: async (name: string) => {
      await new Promise((r) => setTimeout(r, readDelayMs));
      return structuredClone(map.get(name)) ?? null;
    },
    setItem: async (name: string, value: StorageValue<PersistedWorkspace>) => {
      writes.push(value);
      map.set(name, structuredClone(value));
    },
    removeItem: async (name: string) => void map.delete(name),
  };
}

describe('studio workspace', () => {
  it('measures after every change; the newest request wins', async () => {
    const { fake, store } = await workspace();
    await store.getState().connectGpu();
    const base = await store.getState().addCheckpoint('base', []);
    const a = await store.getState().addCheckpoint('a', []);
    expect(store.getState().checkpoints.find((c) => c.id === base)?.role).toBe('base');
    const text = await store.getState().addValidationText('prose', 'one two three');
    await settle();
    expect(store.getState().perplexities[text]).toBeCloseTo(bowl([1], 0), 12);
    for (const w of [0.1, 0.2, 0.3]) store.getState().setCoefficient(a, w);
    await settle();
    expect(store.getState().evalStatus).toBe('done');
    expect(store.getState().perplexities[text]).toBeCloseTo(bowl([0.3], 0), 12);
    expect(fake.evaluations.at(-1)?.recipe.models[0]?.parameters.weight).toBe(0.3);
    expect(store.getState().references[`${base}|${text}`]).toBe(9);
    expect(store.getState().timings?.mode).toBe('resident');
  });

  it('a per-layer coefficient becomes a gradient in the recipe; slider values clamp to [-1, 2]', async () => {
    const { store } = await workspace();
    await store.getState().addCheckpoint('base', []);
    const a = await store.getState().addCheckpoint('a', []);
    store.getState().setCoefficient(a, 5);
    expect(store.getState().coefficients[a]?.value).toBe(2);
    store.getState().setCoefficientMode(a, 'layers');
    store.getState().setAnchor(a, 2, 0.25);
    const files = store.getState().recipeFiles();
    if ('error' in files) throw new Error(files.error);
    expect(JSON.parse(files.json).models[0].parameters.weight).toEqual([2, 2, 0.25]);
    expect(files.yaml).toContain('merge_method: task_arithmetic');
    expect(files.card).toMatch(/^---\n(?:.*\n)*tags:\n- mergekit\n- merge\n/);
    expect(files.card).toContain(files.yaml.trimEnd());
  });

  it('one default coefficient: a new fine-tune gets it, reset restores it (keeping mode and anchor count), the recipe uses it', async () => {
    const { store } = await workspace();
    await store.getState().addCheckpoint('base', []);
    const a = await store.getState().addCheckpoint('a', []);
    await settle();
    expect(store.getState().coefficients[a]).toEqual(defaultCoefficient());
    expect(defaultCoefficient()).toEqual({ mode: 'scalar', value: 1, anchors: [1, 1, 1] });
    store.getState().setCoefficientMode(a, 'layers');
    store.getState().setAnchorCount(a, 5);
    store.getState().setAnchor(a, 1, -0.5);
    store.getState().resetCoefficient(a);
    expect(store.getState().coefficients[a]).toEqual({ mode: 'layers', value: 1, anchors: [1, 1, 1, 1, 1] });
    // A fine-tune without an entry (not refreshed yet) merges with the default weight.
    store.setState({ coefficients: {} });
    const files = store.getState().recipeFiles();
    if ('error' in files) throw new Error(files.error);
    expect(JSON.parse(files.json).models[0].parameters.weight).toBe(defaultCoefficient().value);
  });

  it('reports an empty validation text and keeps the workspace', async () => {
    const { store } = await workspace();
    await store.getState().addCheckpoint('base', []);
    const id = await store.getState().addValidationText('empty', '   ');
    const v = store.getState().validationSets.find((x) => x.id === id);
    expect(v?.status).toBe('failed');
    expect(v?.error?.message).toMatch(/empty/);
    expect(store.getState().checkpoints).toHaveLength(1);
  });

  it('a 2-vector grid search finds the grid point nearest the optimum; apply sets the sliders', async () => {
    const { store } = await workspace();
    await store.getState().connectGpu();
    await store.getState().addCheckpoint('base', []);
    const a = await store.getState().addCheckpoint('a', []);
    const b = await store.getState().addCheckpoint('b', []);
    await store.getState().addValidationText('t', 'x y');
    await store.getState().runGrid({ axes: { [a]: { min: 0, max: 1, step: 0.25 }, [b]: { min: 0, max: 1, step: 0.25 } }, sumToOne: false });
    const rows = store.getState().searchRows;
    expect(rows).toHaveLength(25);
    expect(store.getState().job).toMatchObject({ status: 'done', done: 25, total: 25 });
    const best = rows.reduce((x, y) => (y.objective < x.objective ? y : x));
    expect(best.weights).toEqual([0.5, 0.5]);
    store.getState().applyRow(best);
    expect(store.getState().coefficients[a]?.value).toBe(0.5);
    await store.getState().runOptimizer(40);
    const opt = store.getState().searchRows.reduce((x, y) => (y.objective < x.objective ? y : x));
    expect(store.getState().searchRows.length).toBeLessThanOrEqual(40);
    expect(opt.objective - 5).toBeLessThan(1e-3);
  });

  it('writes the workspace only when it changed, and never before the stored one is read back', async () => {
    const storage = memoryStorage();
    const first = await workspace(storage);
    const file = () => [{ path: 'config.json', file: new File(['{}'], 'config.json') }];
    await first.store.getState().addCheckpoint('base', file());
    const a = await first.store.getState().addCheckpoint('a', file());
    await settle();
    const before = storage.writes.length;
    expect(before).toBeGreaterThan(0);
    // State outside the workspace (notices, GPU status, training progress) writes nothing.
    first.store.getState().notify({ level: 'info', title: 'x', message: 'y' });
    first.store.setState({ trainStatus: 'running', trainTokens: 5 });
    expect(storage.writes.length).toBe(before);
    first.store.getState().setCoefficient(a, 0.4);
    expect(storage.writes.length).toBe(before + 1);
    expect(storage.writes.at(-1)?.state.coefficients[a]?.value).toBe(0.4);

    // A second session whose storage answers slowly: a change before the stored workspace is back
    // is not written over it.
    const slow = memoryStorage(30);
    slow.map.set(PERSIST_KEY, structuredClone(storage.map.get(PERSIST_KEY)!));
    const again = createStudioStore({ ...fakeEngine({ base: async () => summary('base'), a: async () => summary('a') }), storage: slow });
    again.getState().notify({ level: 'info', title: 'early', message: 'before hydration' });
    again.setState({ objectiveWeights: { x: 2 } });
    expect(slow.writes).toEqual([]);
    await again.restored;
    expect(again.getState().checkpoints.map((c) => c.name).sort()).toEqual(['a', 'base']);
    expect(slow.writes.at(-1)?.state.checkpoints.map((c) => c.name).sort()).toEqual(['a', 'base']);
  });

  it('survives a reload: files, roles, coefficients and texts come back; unreadable files ask for re-selection', async () => {
    const storage = memoryStorage();
    const first = await workspace(storage);
    const file = () => [{ path: 'config.json', file: new File(['{}'], 'config.json') }];
    await first.store.getState().addCheckpoint('base', file());
    const a = await first.store.getState().addCheckpoint('a', file());
    first.store.getState().setCoefficient(a, 0.7);
    await first.store.getState().addValidationText('prose', 'one two');
    await settle();
    const fake = fakeEngine({
      a: async () => summary('a'),
      base: async () => {
        throw new Error('NotReadableError');
      },
    });
    const again = createStudioStore({ ...fake, storage });
    await again.restored;
    const s = again.getState();
    expect(s.coefficients[a]?.value).toBe(0.7);
    expect(s.validationSets.map((v) => v.name)).toEqual(['prose']);
    const cards = Object.fromEntries(s.checkpoints.map((c) => [c.name, c]));
    expect(cards.a?.status).toBe('ready');
    // Browsers clone Files as Files; Node's structuredClone keeps the Blob part.
    expect(cards.a?.files[0]?.file).toBeInstanceOf(Blob);
    expect(cards.base).toMatchObject({ status: 'failed', role: 'base', needsReselect: true });
    expect(cards.base?.error?.message).toMatch(/Choose “base” again/);
  });
});

describe('undo/redo, shared recipes and imports', () => {
  async function twoTunes() {
    const { fake, store } = await workspace();
    await store.getState().addCheckpoint('base', []);
    const a = await store.getState().addCheckpoint('a', []);
    const b = await store.getState().addCheckpoint('b', []);
    await settle();
    store.getState().clearHistory();
    return { fake, store, a, b };
  }

  it('undoes and redoes coefficients, method and parameters; a drag is one step; a new change clears redo; undo re-measures', async () => {
    let t = 10_000;
    const now = vi.spyOn(Date, 'now').mockImplementation(() => t);
    try {
      const { store, a, b } = await twoTunes();
      const st = () => store.getState();
      // A drag: many changes within COALESCE_MS of each other.
      for (const v of [0.9, 0.8, 0.7, 0.6]) {
        st().setCoefficient(a, v);
        t += COALESCE_MS / 3;
      }
      t += COALESCE_MS * 2;
      st().setMethod('ties');
      t += COALESCE_MS * 2;
      st().setParam('density', 0.4);
      t += COALESCE_MS * 2;
      st().setCoefficient(b, -0.5);
      expect(st().undoStack.length).toBe(4);
      st().undo();
      expect(st().coefficients[b]?.value ?? 1).toBe(1);
      expect(st().params.density).toBe(0.4);
      st().undo();
      expect(st().params.density).toBeUndefined();
      expect(st().method).toBe('ties');
      st().undo();
      expect(st().method).toBe('task_arithmetic');
      expect(st().coefficients[a]?.value).toBe(0.6);
      st().undo();
      expect(st().coefficients[a]?.value ?? 1).toBe(1);
      expect(st().undoStack.length).toBe(0);
      st().undo(); // nothing left: no change
      expect(st().coefficients[a]?.value ?? 1).toBe(1);
      st().redo();
      st().redo();
      expect([st().coefficients[a]?.value, st().method]).toEqual([0.6, 'ties']);
      expect(st().redoStack.length).toBe(2);
      const evaluate = vi.fn(async () => {});
      store.setState({ evaluate });
      st().undo();
      st().redo();
      expect(evaluate).toHaveBeenCalledTimes(2);
      t += COALESCE_MS * 2;
      st().setCoefficient(b, 0.3);
      expect(st().redoStack.length).toBe(0);
    } finally {
      now.mockRestore();
    }
  });

  it('applies a mergekit YAML by fine-tune name (or a path\'s last part), as one undoable step', async () => {
    const { store, a, b } = await twoTunes();
    const yaml = 'merge_method: ties\nbase_model: ../models/base\nmodels:\n  - model: ../models/a\n    parameters: {weight: 0.7, density: 0.5}\n  - model: b\n    parameters: {weight: [0.2, 1.0, 0.4], density: 0.5}\nparameters:\n  normalize: false\n';
    const r = store.getState().applyRecipe(parseMergekitYaml(yaml, 'x.yml'));
    expect(r).toEqual({ ok: true, unmatched: [] });
    const s = store.getState();
    expect([s.method, s.params.density, s.params.normalize]).toEqual(['ties', 0.5, false]);
    expect(s.coefficients[a]).toMatchObject({ mode: 'scalar', value: 0.7 });
    expect(s.coefficients[b]).toMatchObject({ mode: 'layers', anchors: [0.2, 1, 0.4] });
    expect(s.recipeFiles()).toMatchObject({ yaml: expect.stringContaining('density: 0.5') });
    store.getState().undo();
    expect(store.getState().method).toBe('task_arithmetic');
    expect(store.getState().coefficients[a]?.value ?? 1).toBe(1);
  });

  it('a recipe naming a fine-tune that is not loaded says so; one that leaves a fine-tune out gives it ω = 0; what the controls cannot hold is refused whole', async () => {
    const { store, a, b } = await twoTunes();
    const json = { version: 1, method: 'task_arithmetic', base: 'base', models: [{ model: 'a', parameters: { weight: 0.5 } }, { model: 'zzz', parameters: { weight: 1 } }], parameters: { lambda: 0.8 } };
    expect(store.getState().applyRecipe(parseRecipe(json))).toEqual({ ok: true, unmatched: ['zzz'] });
    expect([store.getState().coefficients[a]?.value, store.getState().coefficients[b]?.value, store.getState().params.lambda]).toEqual([0.5, 0, 0.8]);
    const before = store.getState().coefficients;
    const differing = parseMergekitYaml('merge_method: ties\nbase_model: base\nmodels:\n  - model: a\n    parameters: {weight: 1, density: 0.5}\n  - model: b\n    parameters: {weight: 1, density: 0.3}\n');
    expect(store.getState().applyRecipe(differing)).toEqual({ ok: false, error: 'models[].parameters.density: the studio holds one density for all models; this recipe gives each its own' });
    const filtered = parseMergekitYaml('merge_method: task_arithmetic\nbase_model: base\nmodels:\n  - model: a\n    parameters:\n      weight:\n        - filter: mlp\n          value: 0.5\n        - value: 1\n');
    expect(store.getState().applyRecipe(filtered)).toMatchObject({ ok: false, error: expect.stringMatching(/^a: weight .* is not a number or a curve of 2–8 anchors/) });
    expect(store.getState().coefficients).toBe(before);
  });

  it('the URL fragment carries the recipe by name and reads back to the same controls; a bad fragment is an InputError', async () => {
    const { store, a, b } = await twoTunes();
    store.getState().setMethod('dare_ties');
    store.getState().setParam('density', 0.6);
    store.getState().setCoefficient(a, 0.25);
    store.getState().setCoefficientMode(b, 'layers');
    store.getState().setAnchor(b, 1, -0.5);
    const files = store.getState().recipeFiles();
    if ('error' in files) throw new Error(files.error);
    const hash = recipeHash(parseRecipe(JSON.parse(files.json)));
    expect(hash).toMatch(/^#recipe=%7B/);
    const want = { method: store.getState().method, params: store.getState().params, coefficients: store.getState().coefficients };
    const fresh = await twoTunes();
    expect(fresh.store.getState().applyRecipe(recipeFromHash(hash)!)).toEqual({ ok: true, unmatched: [] });
    const got = fresh.store.getState();
    expect(got.method).toBe(want.method);
    expect(got.params.density).toBe(0.6);
    expect(got.coefficients[fresh.a]).toMatchObject({ mode: 'scalar', value: 0.25 });
    expect(got.coefficients[fresh.b]).toMatchObject({ mode: 'layers', anchors: want.coefficients[b]!.anchors });
    expect(recipeFromHash('#other=1')).toBeUndefined();
    expect(() => recipeFromHash('#recipe=%7Bnope')).toThrow(InputError);
    expect(() => recipeFromHash(`#recipe=${encodeURIComponent(JSON.stringify({ version: 1, method: 'magic', base: 'b', models: [] }))}`)).toThrow(/unknown merge method 'magic'/);
  });
});
