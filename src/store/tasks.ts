import type { StateCreator } from 'zustand/vanilla';
import { headlineScore, InputError, weightedMean, type MergeRecipe } from '../engine/index.ts';
import type { KeyedScore } from '../worker/protocol.ts';
import { errorRecord, isCancelled } from './errors.ts';
import { newId } from './ids.ts';
import { engineRecipe } from './merge.ts';
import { baseOf, fineTunes, mixingBaselines } from './recipe.ts';
import type { SearchRow, StoreDeps, StudioState, TaskFileEntry, TaskResult, TasksSlice } from './types.ts';

/**
 * Task files beside the validation texts (one per distribution), tokenized in the Worker with the
 * base's tokenizer, and their scores: for the current merge right after its perplexity (the
 * merge slice's evaluate calls scoreCurrentTasks with its own cancellation, so the newest slider
 * position wins for both), for unmerged checkpoints on demand (the comparison table), and with
 * every search row (search.ts). A bad file fails on its own entry; the workspace stays.
 */
export function readyTasks(s: Pick<StudioState, 'taskFiles' | 'validationSets'>): TaskFileEntry[] {
  return s.taskFiles.filter((t) => t.status === 'ready' && s.validationSets.some((v) => v.id === t.setId));
}

export function taskResult(s: KeyedScore): TaskResult {
  return s.kind === 'choice'
    ? { kind: s.kind, n: s.n, score: s.acc, stderr: s.stderr, accNorm: s.accNorm }
    : { kind: s.kind, n: s.n, score: s.exactMatch, stderr: s.stderr };
}

/** A search row's task columns: headline score by set id, and their mean weighted like the perplexity objective's. */
export function rowScores(scores: readonly KeyedScore[], tasks: readonly TaskFileEntry[], weights: Readonly<Record<string, number>>): Pick<SearchRow, 'scores' | 'taskObjective'> {
  const bySet: Record<string, number> = {};
  for (const s of scores) {
    const t = tasks.find((x) => x.id === s.task);
    if (t) bySet[t.setId] = headlineScore(s);
  }
  const sets = Object.keys(bySet);
  if (sets.length === 0) return {};
  return { scores: bySet, taskObjective: weightedMean(sets.map((id) => bySet[id]!), sets.map((id) => weights[id] ?? 1)) };
}

/** The search row DEM would pick: the lowest (weighted mean) validation perplexity. */
export function perplexityChosen(rows: readonly SearchRow[]): SearchRow | undefined {
  return rows.reduce<SearchRow | undefined>((a, b) => (!a || b.objective < a.objective ? b : a), undefined);
}

export const createTasksSlice = ({ engine }: StoreDeps): StateCreator<StudioState, [], [], TasksSlice> => {
  let comparing: AbortController | undefined;

  return (set, get) => {
    const update = (id: string, patch: Partial<TaskFileEntry>): void => set((s) => ({ taskFiles: s.taskFiles.map((t) => (t.id === id ? { ...t, ...patch } : t)) }));

    const prepare = async (id: string): Promise<void> => {
      const entry = get().taskFiles.find((t) => t.id === id);
      if (!entry) return;
      const base = baseOf(get().checkpoints);
      if (!base) {
        update(id, { status: 'waiting', kind: null, items: null, error: null });
        return;
      }
      update(id, { status: 'preparing', error: null });
      try {
        const r = await engine.call('addTask', { key: id, name: entry.name, text: entry.text, base: base.id });
        // A newer base may have taken over meanwhile (its own pass sets the state), or the file was replaced.
        if (baseOf(get().checkpoints)?.id !== base.id || !get().taskFiles.some((t) => t.id === id)) return;
        update(id, { status: 'ready', kind: r.kind, items: r.items, error: null });
      } catch (error) {
        update(id, { status: 'failed', kind: null, items: null, error: errorRecord(error) });
      }
    };

    const drop = (ids: readonly string[]): void => {
      for (const id of ids) void engine.call('unload', { key: id }).catch(() => undefined);
    };

    return {
      taskFiles: [],
      taskScores: {},
      taskStatus: 'idle',
      taskError: null,
      taskMs: null,
      taskReferences: {},
      trainedTokens: {},
      comparisonStatus: 'idle',
      comparisonError: null,

      addTaskFile: async (setId, name, text, restoreId) => {
        const id = restoreId ?? newId('task');
        const replaced = get().taskFiles.filter((t) => t.setId === setId && t.id !== id);
        set((s) => ({
          taskFiles: [...s.taskFiles.filter((t) => t.setId !== setId), { id, setId, name, text, status: 'waiting', kind: null, items: null, error: null }],
        }));
        drop(replaced.map((t) => t.id));
        await prepare(id);
        void get().evaluate();
        return id;
      },

      removeTaskFile: (setId) => {
        const gone = get().taskFiles.filter((t) => t.setId === setId);
        if (gone.length === 0) return;
        set((s) => {
          const taskScores = { ...s.taskScores };
          for (const t of gone) delete taskScores[t.id];
          return { taskFiles: s.taskFiles.filter((t) => t.setId !== setId), taskScores };
        });
        drop(gone.map((t) => t.id));
      },

      retokenizeTasks: async () => {
        // Other token ids: every earlier score is of another tokenization.
        set({ taskScores: {}, taskReferences: {} });
        await Promise.all(get().taskFiles.map((t) => prepare(t.id)));
      },

      scoreCurrentTasks: async (recipe: MergeRecipe, signal: AbortSignal, current: () => boolean) => {
        const tasks = readyTasks(get());
        if (tasks.length === 0) {
          set({ taskStatus: 'idle', taskError: null, taskScores: {} });
          return;
        }
        set({ taskStatus: 'running' });
        try {
          const r = await engine.call('score', { recipe, tasks: tasks.map((t) => t.id) }, { signal });
          if (!current()) return;
          set({ taskStatus: 'done', taskError: null, taskScores: Object.fromEntries(r.scores.map((x) => [x.task, taskResult(x)])), taskMs: r.totalMs });
        } catch (error) {
          const info = errorRecord(error);
          if (isCancelled(info) || !current()) return;
          set({ taskStatus: 'failed', taskError: info });
        }
      },

      setTrainedTokens: (id, tokens) =>
        set((s) => {
          const trainedTokens = { ...s.trainedTokens };
          if (tokens === null || !Number.isFinite(tokens) || tokens < 0) delete trainedTokens[id];
          else trainedTokens[id] = Math.round(tokens);
          return { trainedTokens };
        }),

      measureComparison: async () => {
        comparing?.abort();
        const controller = new AbortController();
        comparing = controller;
        const { signal } = controller;
        set({ comparisonStatus: 'running', comparisonError: null });
        try {
          const s = get();
          const base = baseOf(s.checkpoints);
          if (!base) throw new InputError('Add a base checkpoint first.');
          const tasks = readyTasks(s);
          get().refreshReferences();
          for (const c of [base, ...mixingBaselines(s.checkpoints), ...fineTunes(s.checkpoints)]) {
            const missing = tasks.filter((t) => get().taskReferences[`${c.id}|${t.id}`] === undefined);
            if (missing.length === 0) continue;
            const r = await engine.call('taskReference', { checkpoint: c.id, tasks: missing.map((t) => t.id) }, { signal });
            set((st) => ({ taskReferences: { ...st.taskReferences, ...Object.fromEntries(r.map((x) => [`${c.id}|${x.task}`, headlineScore(x)])) } }));
          }
          // The perplexity-chosen merge of a search run before its task files were added.
          const st = get();
          const chosen = perplexityChosen(st.searchRows);
          if (chosen && tasks.some((t) => chosen.scores?.[t.setId] === undefined)) {
            const recipe = engineRecipe(st, Object.fromEntries(st.searchCoefIds.map((id, i) => [id, chosen.weights[i]!])));
            const r = await engine.call('score', { recipe, tasks: tasks.map((t) => t.id) }, { signal });
            const cols = rowScores(r.scores, tasks, get().objectiveWeights);
            set((x) => ({ searchRows: x.searchRows.map((row) => (row.id === chosen.id ? { ...row, ...cols } : row)) }));
          }
          if (comparing === controller) set({ comparisonStatus: 'done' });
        } catch (error) {
          const info = errorRecord(error);
          if (comparing !== controller) return;
          set({ comparisonStatus: isCancelled(info) ? 'idle' : 'failed', comparisonError: isCancelled(info) ? null : info });
        }
      },
    };
  };
};
