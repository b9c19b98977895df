import { persist } from 'zustand/middleware';
import { createStore, type StoreApi } from 'zustand/vanilla';
import { createGpuSlice, watchEngine } from './gpu.ts';
import { createInsightSlice } from './insight.ts';
import { createMergeSlice } from './merge.ts';
import { createNotificationsSlice } from './notifications.ts';
import { persistOptions, restoreWorkspace } from './persist.ts';
import { createSearchSlice } from './search.ts';
import type { StoreDeps, StudioState } from './types.ts';
import { createValidationSlice } from './validation.ts';
import { createWorkspaceSlice } from './workspace.ts';

/**
 * The one studio store: slices combined over one engine. The engine never sees the store;
 * the store drives the engine and records what it answers. The UI binds it with React
 * (src/ui/store.tsx); tests use it directly with a fake engine. With `deps.storage` the
 * workspace persists (zustand persist) and is restored on creation; `restored` settles when the
 * restored checkpoints and texts are loaded again.
 */
export type StudioStore = StoreApi<StudioState> & { dispose: () => void; restored: Promise<void> };

export function createStudioStore(deps: StoreDeps): StudioStore {
  const slices = (...a: Parameters<Parameters<ReturnType<typeof createStore<StudioState>>>[0]>): StudioState => ({
    ...createGpuSlice(deps)(...a),
    ...createWorkspaceSlice(deps)(...a),
    ...createValidationSlice(deps)(...a),
    ...createMergeSlice(deps)(...a),
    ...createSearchSlice(deps)(...a),
    ...createInsightSlice(deps)(...a),
    ...createNotificationsSlice(...a),
  });
  let resolveRestored: () => void = () => {};
  const restored = new Promise<void>((r) => (resolveRestored = r));
  let store: StoreApi<StudioState>;
  if (deps.storage) {
    store = createStore<StudioState>()(
      persist(slices, persistOptions(deps.storage, (p) => void restoreWorkspace(p, () => store.getState()).finally(resolveRestored))),
    );
  } else {
    store = createStore<StudioState>()(slices);
    resolveRestored();
  }
  const unwatch = watchEngine(deps, store);
  return { ...store, dispose: unwatch, restored };
}

export * from './selectors.ts';
export { COEF_MAX, COEF_MIN, coefficientOf, defaultCoefficient } from './merge.ts';
export { linspace } from './search.ts';
export { indexedDbStorage } from './persist.ts';
export type * from './types.ts';
