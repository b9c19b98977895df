import type { StateCreator, StoreApi } from 'zustand/vanilla';
import { recipeToControls } from './share.ts';
import type { HistorySlice, RecipeSnapshot, StudioState } from './types.ts';

/** Steps kept for undo. */
const LIMIT = 100;
/** Changes closer together than this are one step (a slider drag sends one per pixel). */
export const COALESCE_MS = 600;

const snapshotOf = (s: RecipeSnapshot): RecipeSnapshot => ({ method: s.method, params: s.params, coefficients: s.coefficients });

/**
 * Undo/redo over what makes the recipe: the method, its parameters and the coefficients. The
 * watcher records the state before each change (watchHistory); undo and redo swap snapshots and
 * re-measure, and are not recorded themselves.
 */
export const createHistorySlice: StateCreator<StudioState, [], [], HistorySlice> = (set, get) => {
  const step = (from: 'undoStack' | 'redoStack', to: 'undoStack' | 'redoStack'): void => {
    const s = get();
    const target = s[from][s[from].length - 1];
    if (!target) return;
    set({ ...target, [from]: s[from].slice(0, -1), [to]: [...s[to], snapshotOf(s)].slice(-LIMIT), historyApplying: true });
    set({ historyApplying: false });
    void get().evaluate();
  };
  return {
    undoStack: [],
    redoStack: [],
    historyApplying: false,
    undo: () => step('undoStack', 'redoStack'),
    redo: () => step('redoStack', 'undoStack'),
    clearHistory: () => set({ undoStack: [], redoStack: [] }),
    // One recorded step: an imported recipe is undone like any other change.
    applyRecipe: (recipe) => {
      const s = get();
      const r = recipeToControls(recipe, s.checkpoints, s.coefficients);
      if (!r.ok) return r;
      set(r.snapshot);
      void get().evaluate();
      return { ok: true, unmatched: r.unmatched };
    },
  };
};

/** Records the recipe before each change of method, params or coefficients; returns the unsubscribe. */
export function watchHistory(store: StoreApi<StudioState>, now: () => number = Date.now): () => void {
  let last = -Infinity;
  return store.subscribe((s, prev) => {
    if (s.historyApplying || prev.historyApplying) return;
    if (s.method === prev.method && s.params === prev.params && s.coefficients === prev.coefficients) return;
    const t = now();
    const coalesce = t - last < COALESCE_MS && s.undoStack.length > 0;
    last = t;
    if (coalesce) return;
    store.setState({ undoStack: [...s.undoStack, snapshotOf(prev)].slice(-LIMIT), redoStack: [] });
  });
}
