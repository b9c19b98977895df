import { persist } from 'zustand/middleware';
import { createStore, type StateCreator, type StoreApi } from 'zustand/vanilla';
import { createGpuSlice, watchEngine } from './gpu.ts';
import { createHistorySlice, watchHistory } from './history.ts';
import { createInsightSlice } from './insight.ts';
import { createLearnSlice } from './learn.ts';
import { createMergeSlice } from './merge.ts';
import { createNotificationsSlice } from './notifications.ts';
import { persistOptions, restoreWorkspace } from './persist.ts';
import { createSearchSlice } from './search.ts';
import { createTasksSlice } from './tasks.ts';
import { createNoStorageSlice, opfsStorage } from './storage.ts';
import { createTrainingSlice } from './training.ts';
import type { StoreDeps, StudioState } from './types.ts';
import { createValidationSlice } from './validation.ts';
import { createWorkspaceSlice } from './workspace.ts';

/**
 * The one studio store: zustand's slices pattern, every slice a StateCreator of the whole state
 * combined over one engine; middleware (persist) wraps the combination only. The engine never
 * sees the store; the store drives the engine and the training Worker and records what they
 * answer. The training and storage slices change the workspace through its actions only. The
 * UI binds the store with React (src/ui/store.tsx); tests use it directly with fakes. With
 * `deps.local` (OPFS) or `deps.storage` the workspace persists and is restored on creation;
 * `restored` settles when the restored checkpoints and texts are loaded again.
 */
export type StudioStore = StoreApi<StudioState> & { dispose: () => void; restored: Promise<void> };

export function createStudioStore(deps: StoreDeps): StudioStore {
  const opfs = deps.local ? opfsStorage(deps.local, { handles: deps.handles, inPlaceBytes: deps.inPlaceBytes }) : undefined;
  const slices: StateCreator<StudioState> = (...a) => ({
    ...createGpuSlice(deps)(...a),
    ...createWorkspaceSlice(deps)(...a),
    ...createValidationSlice(deps)(...a),
    ...createMergeSlice(deps)(...a),
    ...createHistorySlice(...a),
    ...createSearchSlice(deps)(...a),
    ...createInsightSlice(deps)(...a),
    ...createNotificationsSlice(...a),
    ...createTasksSlice(deps)(...a),
    ...createTrainingSlice(deps)(...a),
    ...(opfs ? opfs.slice : createNoStorageSlice)(...a),
    ...createLearnSlice(deps)(...a),
  });
  let resolveRestored: () => void = () => {};
  const restored = new Promise<void>((r) => (resolveRestored = r));
  const storage = opfs?.persist ?? deps.storage;
  let store: StoreApi<StudioState>;
  if (storage) {
    store = createStore<StudioState>()(
      persist(slices, persistOptions(storage, (p) => void restoreWorkspace(p, () => store.getState()).finally(resolveRestored))),
    );
  } else {
    store = createStore<StudioState>()(slices);
    resolveRestored();
  }
  const unwatch = [watchEngine(deps, store), opfs?.watch(store), watchHistory(store)];
  // Restoring the saved workspace is where history starts, not a step to undo.
  void restored.then(() => store.getState().clearHistory());
  return { ...store, dispose: () => unwatch.forEach((off) => off?.()), restored };
}

export * from './selectors.ts';
export { COEF_MAX, COEF_MIN, coefficientOf, defaultCoefficient } from './merge.ts';
export { linspace } from './search.ts';
export { recipeFromHash, recipeHash } from './share.ts';
export { COALESCE_MS } from './history.ts';
export { perplexityChosen, readyTasks } from './tasks.ts';
export { comparisonOf, type ComparisonSource } from './comparison.ts';
export { indexedDbStorage } from './persist.ts';
export { pointKey, startLearn } from './learn.ts';
export { DEFAULT_TRAIN_SETTINGS, MIN_TEXT_CHARS } from './training.ts';
export type * from './types.ts';
