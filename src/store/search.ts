import type { StateCreator } from 'zustand/vanilla';
import { CancelledError, InputError, etaSeconds, gridPoints, nelderMead, weightedMean } from '../engine/index.ts';
import { errorRecord, isCancelled } from './errors.ts';
import { COEF_MAX, COEF_MIN, coefficientOf, engineRecipe } from './merge.ts';
import { baseOf, fineTunes } from './recipe.ts';
import { readyTasks, rowScores } from './tasks.ts';
import type { JobKind, SearchRow, SearchSlice, StoreDeps, StudioState } from './types.ts';

/**
 * Sweeps, heat maps and searches: many merges, each measured on every validation set. The
 * search logic is the engine's (src/engine/search); each evaluation is one `evaluate` request
 * (and, in grids and the optimizer, one `score` request when there are task files), so the
 * Worker keeps the resident merge throughout. The optimizer minimises the perplexity objective
 * or maximises the task score (searchTarget). One job runs at a time; cancelling aborts the
 * request in flight.
 */
export function linspace(from: number, to: number, steps: number): number[] {
  const n = Math.max(2, Math.round(steps));
  return Array.from({ length: n }, (_, i) => Math.round((from + ((to - from) * i) / (n - 1)) * 1e6) / 1e6);
}

export const createSearchSlice = ({ engine }: StoreDeps): StateCreator<StudioState, [], [], SearchSlice> => {
  let controller: AbortController | undefined;
  let nextRow = 1;

  return (set, get) => {
    /** Runs `body` as the one job; `measure` evaluates a point given as weights by fine-tune id. */
    const job = async (
      kind: JobKind,
      total: number,
      body: (measure: (weights: Record<string, number>) => Promise<SearchRow>, tick: () => void) => Promise<void>,
      withTasks = false,
    ): Promise<void> => {
      controller?.abort();
      const mine = new AbortController();
      controller = mine;
      const s = get();
      const base = baseOf(s.checkpoints);
      const sets = s.validationSets.filter((v) => v.status === 'ready').map((v) => v.id);
      const startedAt = Date.now();
      const fail = (message: string): void => set({ job: { kind, status: 'failed', done: 0, total, etaS: null, startedAt, error: errorRecord(new InputError(message)) } });
      if (!base) return fail('Add a base checkpoint first.');
      if (sets.length === 0) return fail('Add a validation text first.');
      if (fineTunes(s.checkpoints).length === 0) return fail('Add at least one fine-tune.');
      const tasks = withTasks ? readyTasks(s) : [];
      if (kind === 'optimize' && s.searchTarget === 'task' && tasks.length === 0) return fail('Add a task file to a validation set to optimise the task score.');
      let done = 0;
      set({ job: { kind, status: 'running', done, total, etaS: null, startedAt, error: null } });
      const tick = (): void => {
        done += 1;
        const eta = etaSeconds(done, total, Date.now() - startedAt);
        set((st) => (st.job && controller === mine ? { job: { ...st.job, done, etaS: eta ?? null } } : {}));
      };
      const measure = async (weights: Record<string, number>): Promise<SearchRow> => {
        const st = get();
        const tunes = fineTunes(st.checkpoints);
        const recipe = engineRecipe(st, weights);
        const r = await engine.call('evaluate', { recipe, sets }, { signal: mine.signal });
        const ppls = Object.fromEntries(r.perplexities.map((p) => [p.set, p.ppl]));
        const objective = weightedMean(
          sets.map((id) => ppls[id]!),
          sets.map((id) => st.objectiveWeights[id] ?? 1),
        );
        // Both numbers for every row: perplexity first, then the task scores of the same merge.
        const scored = tasks.length ? rowScores((await engine.call('score', { recipe, tasks: tasks.map((t) => t.id) }, { signal: mine.signal })).scores, tasks, st.objectiveWeights) : {};
        return { id: nextRow++, weights: tunes.map((t) => weights[t.id] ?? coefficientOf(st.coefficients, t.id).value), ppls, objective, ...scored };
      };
      try {
        await body(measure, tick);
        if (controller === mine) set((st) => ({ job: st.job && { ...st.job, status: 'done', etaS: 0 } }));
      } catch (error) {
        const info = errorRecord(error);
        if (controller !== mine) return;
        set((st) => ({ job: st.job && { ...st.job, status: isCancelled(info) ? 'cancelled' : 'failed', error: isCancelled(info) ? null : info } }));
      }
    };

    return {
      job: null,
      sweep: null,
      heatmap: null,
      searchRows: [],
      searchKind: null,
      searchCoefIds: [],
      objectiveWeights: {},
      searchTarget: 'perplexity',

      setSearchTarget: (searchTarget) => set({ searchTarget }),

      setObjectiveWeight: (setId, weight) => set((s) => ({ objectiveWeights: { ...s.objectiveWeights, [setId]: weight } })),

      runSweep: (coefId, from, to, steps) => {
        const xs = linspace(from, to, steps);
        return job('sweep', xs.length, async (measure, tick) => {
          set({ sweep: { coefId, rows: [] } });
          for (const x of xs) {
            const row = await measure({ [coefId]: x });
            set((s) => ({ sweep: s.sweep && { ...s.sweep, rows: [...s.sweep.rows, row] } }));
            tick();
          }
        });
      },

      runHeatmap: (xId, yId, from, to, steps) => {
        const xs = linspace(from, to, steps);
        const ys = linspace(from, to, steps);
        return job('heatmap', xs.length * ys.length, async (measure, tick) => {
          set({ heatmap: { xId, yId, xs, ys, rows: [] } });
          for (const y of ys) {
            for (const x of xs) {
              const row = await measure({ [xId]: x, [yId]: y });
              set((s) => ({ heatmap: s.heatmap && { ...s.heatmap, rows: [...s.heatmap.rows, row] } }));
              tick();
            }
          }
        });
      },

      runGrid: async (config) => {
        const tunes = fineTunes(get().checkpoints);
        let points: number[][];
        try {
          points = gridPoints({ axes: tunes.map((t) => config.axes[t.id] ?? { min: 0, max: 1, step: 0.5 }), sumToOne: config.sumToOne });
        } catch (error) {
          set({ job: { kind: 'grid', status: 'failed', done: 0, total: 0, etaS: null, startedAt: Date.now(), error: errorRecord(error) } });
          return;
        }
        await job('grid', points.length, async (measure, tick) => {
          set({ searchRows: [], searchKind: 'grid', searchCoefIds: tunes.map((t) => t.id) });
          for (const p of points) {
            const row = await measure(Object.fromEntries(tunes.map((t, i) => [t.id, p[i]!])));
            set((s) => ({ searchRows: [...s.searchRows, row] }));
            tick();
          }
        }, true);
      },

      runOptimizer: async (budget) => {
        const tunes = fineTunes(get().checkpoints);
        const x0 = tunes.map((t) => coefficientOf(get().coefficients, t.id).value);
        const target = get().searchTarget;
        await job('optimize', budget, async (measure, tick) => {
          set({ searchRows: [], searchKind: 'optimize', searchCoefIds: tunes.map((t) => t.id) });
          const signal = controller?.signal;
          await nelderMead(
            async (x) => {
              if (signal?.aborted) throw new CancelledError();
              const row = await measure(Object.fromEntries(tunes.map((t, i) => [t.id, x[i]!])));
              set((s) => ({ searchRows: [...s.searchRows, row] }));
              tick();
              // Nelder–Mead minimises: the task score (higher is better) with its sign flipped.
              return target === 'task' ? -(row.taskObjective ?? NaN) : row.objective;
            },
            x0,
            { maxEvals: budget, step: 0.25, lower: COEF_MIN, upper: COEF_MAX, decimals: 2, xTolerance: 0.01, fTolerance: 1e-5, signal },
          );
        }, true);
      },

      cancelJob: () => {
        controller?.abort();
        set((s) => ({ job: s.job && s.job.status === 'running' ? { ...s.job, status: 'cancelled' } : s.job }));
        controller = undefined;
      },

      applyRow: (row) => {
        const ids = get().searchCoefIds.length ? get().searchCoefIds : fineTunes(get().checkpoints).map((t) => t.id);
        set((s) => ({
          coefficients: {
            ...s.coefficients,
            ...Object.fromEntries(
              ids.map((id, i) => {
                const c = coefficientOf(s.coefficients, id);
                return [id, { ...c, mode: 'scalar' as const, value: row.weights[i] ?? c.value }];
              }),
            ),
          },
        }));
        void get().evaluate();
      },
    };
  };
};
