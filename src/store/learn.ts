import type { StateCreator } from 'zustand/vanilla';
import { CancelledError, DEFAULT_METHOD, nelderMead, type MergeRecipe } from '../engine/index.ts';
import { fetchOk, loadDemo, sameOrigin, type DemoManifest } from './demo.ts';
import { errorRecord, isCancelled } from './errors.ts';
import type { StudioStore } from './index.ts';
import { COEF_MAX, COEF_MIN, engineRecipe } from './merge.ts';
import { baseOf, fineTunes } from './recipe.ts';
import type { LearnDemoInfo, LearnManifest, LearnPoint, LearnSlice, StoreDeps, StudioState } from './types.ts';

/**
 * Learn mode's engine work on the demo workspace: merges named by distribution weights
 * (`{prose: 1}`: every other vector at 0), each measured once by the engine Worker and kept by
 * its weights, so steps that share a merge share its measurement; named runs (a sweep, a heat
 * map, a grid, Nelder–Mead) over such merges; the data-mixing baseline (the demo's card with role
 * `mixing`: compared, never merged); seeded generations. Nothing here knows
 * the lesson's content (src/ui/learn/steps.ts).
 */

const meanOf = (ppl: Readonly<Record<string, number>>): number => {
  const values = Object.values(ppl);
  return values.reduce((a, b) => a + b, 0) / values.length;
};

/** Canonical key of a merge: weights in distribution order, zeros included. */
export function pointKey(distributions: readonly string[], weights: Readonly<Record<string, number>>): string {
  return distributions.map((d) => `${d}=${weights[d] ?? 0}`).join(',');
}

export const createLearnSlice = ({ engine }: StoreDeps): StateCreator<StudioState, [], [], LearnSlice> => {
  /** In-flight measurements by key, so two callers of one merge share one request. */
  const pending = new Map<string, { request: Promise<LearnPoint>; signal: AbortSignal }>();
  let runController: AbortController | undefined;
  let measureController = new AbortController();
  /** Generations in flight by key: asking again for one in flight (an effect run twice) waits for it. */
  const generating = new Map<string, { controller: AbortController; request: Promise<void> }>();
  let mixingRequested = false;

  return (set, get) => {
    const demo = (): LearnDemoInfo => {
      const d = get().learnDemo;
      if (!d) throw new Error('the demo workspace is not loaded');
      return d;
    };

    /** distribution → ppl from the engine's per-set answer. */
    const byDistribution = (d: LearnDemoInfo, perSet: readonly { set: string; ppl: number }[]): Record<string, number> => {
      const bySet = new Map(perSet.map((p) => [p.set, p.ppl]));
      return Object.fromEntries(d.distributions.map((x) => [x.id, bySet.get(d.sets[x.id]!)!]));
    };

    const recipeFor = (d: LearnDemoInfo, weights: Readonly<Record<string, number>>): MergeRecipe =>
      engineRecipe({ ...get(), method: DEFAULT_METHOD, params: {} }, Object.fromEntries(d.distributions.map((x) => [d.vectors[x.id]!, weights[x.id] ?? 0])));

    /**
     * The checkpoint a merge is: every ω = 0 is the base itself (θ + 0·Δ), one vector at ω = 1 with
     * the others at 0 is that fine-tune (θ + Δ). Such a merge shares the checkpoint's own
     * perplexity (the workspace measures it anyway) instead of being measured again.
     */
    const checkpointOf = (d: LearnDemoInfo, full: Readonly<Record<string, number>>): string | undefined => {
      const moved = d.distributions.filter((x) => full[x.id] !== 0);
      if (moved.length === 0) return baseOf(get().checkpoints)?.id;
      return moved.length === 1 && full[moved[0]!.id] === 1 ? d.vectors[moved[0]!.id] : undefined;
    };

    /** A checkpoint's own perplexity by distribution: the workspace's references, the missing ones measured and kept there. */
    const ownPerplexity = async (d: LearnDemoInfo, checkpoint: string, sets: readonly string[], signal: AbortSignal): Promise<Record<string, number>> => {
      const missing = sets.filter((v) => get().references[`${checkpoint}|${v}`] === undefined);
      if (missing.length) {
        const r = await engine.call('reference', { checkpoint, sets: missing }, { signal });
        set((s) => ({ references: { ...s.references, ...Object.fromEntries(r.map((x) => [`${checkpoint}|${x.set}`, x.ppl])) } }));
      }
      const refs = get().references;
      return Object.fromEntries(d.distributions.map((x) => [x.id, refs[`${checkpoint}|${d.sets[x.id]!}`]!]));
    };

    const measure = (weights: Readonly<Record<string, number>>, signal: AbortSignal): Promise<LearnPoint> => {
      const d = demo();
      const key = pointKey(d.distributions.map((x) => x.id), weights);
      const known = get().learnPoints[key];
      if (known) return Promise.resolve(known);
      // Shared unless its requester was cancelled (it is about to fail with that cancellation).
      const inFlight = pending.get(key);
      if (inFlight && !inFlight.signal.aborted) return inFlight.request;
      const full = Object.fromEntries(d.distributions.map((x) => [x.id, weights[x.id] ?? 0]));
      const same = checkpointOf(d, full);
      const request = (async () => {
        const sets = d.distributions.map((x) => d.sets[x.id]!);
        if (same) {
          const ppl = await ownPerplexity(d, same, sets, signal);
          const point: LearnPoint = { key, weights: full, ppl, mean: meanOf(ppl), ms: 0 };
          set((s) => ({ learnPoints: { ...s.learnPoints, [key]: point } }));
          return point;
        }
        const r = await engine.call('evaluate', { recipe: recipeFor(d, full), sets }, { signal });
        const ppl = byDistribution(d, r.perplexities);
        const point: LearnPoint = { key, weights: full, ppl, mean: meanOf(ppl), ms: r.totalMs };
        set((s) => ({ learnPoints: { ...s.learnPoints, [key]: point }, learnEvaluations: s.learnEvaluations + 1 }));
        return point;
      })().finally(() => {
        if (pending.get(key)?.request === request) pending.delete(key);
      });
      pending.set(key, { request, signal });
      return request;
    };

    /** The run that owns each key's entry: a run restarted under its key must not be ended or fed by the one it replaced. */
    const owners = new Map<string, AbortController>();
    const startRun = (key: string, total: number): AbortController => {
      runController?.abort();
      const mine = new AbortController();
      runController = mine;
      owners.set(key, mine);
      set((s) => ({ learnRuns: { ...s.learnRuns, [key]: { status: 'running', points: [], total, error: null } } }));
      return mine;
    };
    const addToRun = (key: string, mine: AbortController, point: LearnPoint): void => {
      if (owners.get(key) !== mine) return;
      set((s) => {
        const run = s.learnRuns[key];
        return run ? { learnRuns: { ...s.learnRuns, [key]: { ...run, points: [...run.points, point] } } } : {};
      });
    };
    const endRun = (key: string, mine: AbortController, error?: unknown): void => {
      if (runController === mine) runController = undefined;
      if (owners.get(key) !== mine) return;
      owners.delete(key);
      set((s) => {
        const run = s.learnRuns[key];
        if (!run) return {};
        if (error === undefined) return { learnRuns: { ...s.learnRuns, [key]: { ...run, status: 'done' } } };
        const info = errorRecord(error);
        return { learnRuns: { ...s.learnRuns, [key]: { ...run, status: isCancelled(info) ? 'cancelled' : 'failed', error: isCancelled(info) ? null : info } } };
      });
    };

    return {
      learnDemo: null,
      learnError: null,
      learnPoints: {},
      learnEvaluations: 0,
      learnRuns: {},
      learnMixing: null,
      learnGenerations: {},

      learnMeasure: async (weights) => {
        try {
          return await measure(weights, measureController.signal);
        } catch (error) {
          const info = errorRecord(error);
          if (!isCancelled(info)) set({ learnError: info });
          return null;
        }
      },

      learnRun: async (key, points) => {
        // The same run asked for again while it goes on (an effect run twice) is that run, not a restart.
        if (owners.get(key)?.signal.aborted === false) return;
        const mine = startRun(key, points.length);
        try {
          for (const p of points) {
            if (mine.signal.aborted) throw new CancelledError();
            addToRun(key, mine, await measure(p, mine.signal));
          }
          endRun(key, mine);
        } catch (error) {
          endRun(key, mine, error);
        }
      },

      learnOptimize: async (key, start, budget) => {
        const d = demo();
        const ids = d.distributions.map((x) => x.id);
        if (owners.get(key)?.signal.aborted === false) return;
        const mine = startRun(key, budget);
        try {
          await nelderMead(
            async (x) => {
              if (mine.signal.aborted) throw new CancelledError();
              const point = await measure(Object.fromEntries(ids.map((id, i) => [id, x[i]!])), mine.signal);
              addToRun(key, mine, point);
              return point.mean;
            },
            ids.map((id) => start[id] ?? 0),
            // The studio's search settings (store/search.ts): coefficients on a 0.01 grid within the sliders' range.
            { maxEvals: budget, step: 0.25, lower: COEF_MIN, upper: COEF_MAX, decimals: 2, xTolerance: 0.01, fTolerance: 1e-5, signal: mine.signal },
          );
          endRun(key, mine);
        } catch (error) {
          endRun(key, mine, error);
        }
      },

      learnCancel: () => {
        runController?.abort();
        runController = undefined;
        measureController.abort();
        measureController = new AbortController();
        for (const g of generating.values()) g.controller.abort();
      },

      learnLoadMixing: async () => {
        const d = get().learnDemo;
        if (!d?.mixing || get().learnMixing || mixingRequested) return;
        const mixing = d.mixing;
        const keys = d.distributions.map((x) => `${mixing}|${d.sets[x.id]!}`);
        const known = (): boolean => keys.every((k) => get().references[k] !== undefined);
        const fromReferences = (): Record<string, number> => Object.fromEntries(d.distributions.map((x, i) => [x.id, get().references[keys[i]!]!]));
        // The workspace measures every card's own perplexity (the mixing card's too) once it is in.
        if (known()) {
          set({ learnMixing: fromReferences() });
          return;
        }
        mixingRequested = true;
        try {
          // Not cancelled with the rest: it is measured once and a step shows it whenever it is back.
          const r = await engine.call('reference', { checkpoint: mixing, sets: d.distributions.map((x) => d.sets[x.id]!) });
          // Kept as the workspace's references too, so they are not measured again.
          set((st) => ({ references: { ...st.references, ...Object.fromEntries(r.map((x) => [`${mixing}|${x.set}`, x.ppl])) } }));
          set({ learnMixing: fromReferences() });
        } catch (error) {
          mixingRequested = false;
          set({ learnError: errorRecord(error) });
        }
      },

      learnGenerate: async (key, model, prompt, options) => {
        const d = get().learnDemo;
        const base = baseOf(get().checkpoints);
        if (!d || !base || get().learnGenerations[key]?.status === 'done') return;
        const inFlight = generating.get(key);
        if (inFlight && !inFlight.controller.signal.aborted) return inFlight.request;
        const mine = new AbortController();
        set((s) => ({ learnGenerations: { ...s.learnGenerations, [key]: { status: 'running', text: '' } } }));
        const entry = { controller: mine, request: Promise.resolve() };
        generating.set(key, entry);
        entry.request = (async () => {
          try {
            if (model === 'mixing' && !d.mixing) throw new Error('the demo has no data-mixing baseline');
            const recipe: MergeRecipe = model === 'mixing' ? { version: 1, method: DEFAULT_METHOD, base: d.mixing!, models: [], parameters: {} } : recipeFor(d, model);
            const { maxTokens, ...sampling } = options;
            const r = await engine.call('generate', { recipe, base: base.id, prompt, maxTokens, sampling }, { signal: mine.signal });
            set((s) => ({ learnGenerations: { ...s.learnGenerations, [key]: { status: 'done', text: r.text } } }));
          } catch (error) {
            const info = errorRecord(error);
            // A newer request under this key (after a cancel) owns its entry now.
            if (generating.get(key)?.controller !== mine) return;
            set((s) => ({ learnGenerations: { ...s.learnGenerations, [key]: { status: isCancelled(info) ? 'cancelled' : 'failed', text: '' } } }));
          } finally {
            if (generating.get(key)?.controller === mine) generating.delete(key);
          }
        })();
        return entry.request;
      },
    };
  };
};

/**
 * Opens the demo workspace for Learn mode in `store` (a store of its own, never the user's
 * workspace): its checkpoints (the mixing baseline among them) and texts as loadDemo adds them,
 * and the map from distributions to fine-tune cards and validation sets.
 */
export async function startLearn(store: StudioStore, engine: StoreDeps['engine'], root = new URL('/demo/', location.href), fetcher: (url: string) => Promise<Response> = (u) => fetch(u)): Promise<void> {
  try {
    const manifestRes = await fetchOk(fetcher, sameOrigin(root, 'manifest.json'));
    const manifest = (await manifestRes.json()) as LearnManifest & DemoManifest;
    // The lesson shows no task scores: their files are left out, so no merge waits on scoring them.
    if (!(await loadDemo(store, root, fetcher, { tasks: false }))) throw new Error('there is no demo workspace on this server');
    const s = store.getState();
    const vectors: Record<string, string> = {};
    for (const c of manifest.checkpoints) {
      if (c.role !== 'fine-tune' || !c.distribution) continue;
      const card = s.checkpoints.find((x) => x.id === `demo-${c.name}`);
      if (card) vectors[c.distribution] = card.id;
    }
    const sets = Object.fromEntries(manifest.distributions.map((d) => [d.id, s.validationSets.find((v) => v.name === d.id)?.id ?? '']));
    const mixingEntry = manifest.checkpoints.find((c) => c.role === 'mixing');
    const mixing = mixingEntry ? (s.checkpoints.find((x) => x.id === `demo-${mixingEntry.name}` && x.role === 'mixing')?.id ?? null) : null;
    const learnDemo: LearnDemoInfo = {
      distributions: manifest.distributions.map((d) => ({ id: d.id, title: d.title ?? d.id })),
      vectors,
      sets,
      mixing,
      manifest,
    };
    store.setState({ learnDemo });
    keepAllOnes(store, learnDemo);
  } catch (error) {
    store.setState({ learnError: errorRecord(error) });
  }
}

/**
 * The workspace measures its current merge by itself once the demo is in (every ω = 1, the
 * studio's default): that measurement is Learn mode's all-ones merge, kept rather than repeated.
 */
function keepAllOnes(store: StudioStore, d: LearnDemoInfo): void {
  const ids = d.distributions.map((x) => x.id);
  const take = (s: StudioState): LearnPoint | null => {
    if (s.evalStatus !== 'done' || s.method !== DEFAULT_METHOD || Object.keys(s.params).length) return null;
    const tunes = fineTunes(s.checkpoints);
    if (tunes.length !== ids.length || !tunes.every((t) => s.coefficients[t.id]?.mode === 'scalar' && s.coefficients[t.id]?.value === 1)) return null;
    const ppl = Object.fromEntries(ids.map((id) => [id, s.perplexities[d.sets[id]!]]));
    if (Object.values(ppl).some((v) => v === undefined)) return null;
    const key = pointKey(ids, Object.fromEntries(ids.map((id) => [id, 1])));
    const values = Object.values(ppl) as number[];
    return { key, weights: Object.fromEntries(ids.map((id) => [id, 1])), ppl: ppl as Record<string, number>, mean: values.reduce((a, b) => a + b, 0) / values.length, ms: s.timings?.totalMs ?? 0 };
  };
  // An unchanged state when the point is known: no listener is told again (and none recurses).
  const keep = (point: LearnPoint): void =>
    store.setState((x) => (x.learnPoints[point.key] ? x : { learnPoints: { ...x.learnPoints, [point.key]: point }, learnEvaluations: x.learnEvaluations + 1 }));
  const now = take(store.getState());
  if (now) return keep(now);
  const off = store.subscribe((s) => {
    const point = take(s);
    if (!point) return;
    off();
    keep(point);
  });
}
