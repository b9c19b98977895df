import { createStore, type StoreApi } from 'zustand/vanilla';
import { createGpuSlice, watchEngine } from './gpu.ts';
import { createNotificationsSlice } from './notifications.ts';
import type { StoreDeps, StudioState } from './types.ts';
import { createWorkspaceSlice } from './workspace.ts';

/**
 * The one studio store: slices combined over one engine. The engine never sees the store;
 * the store drives the engine and records what it answers. The UI binds it with React
 * (src/ui/store.tsx); tests use it directly with a fake engine.
 */
export type StudioStore = StoreApi<StudioState> & { dispose: () => void };

export function createStudioStore(deps: StoreDeps): StudioStore {
  const store = createStore<StudioState>()((...a) => ({
    ...createGpuSlice(deps)(...a),
    ...createWorkspaceSlice(deps)(...a),
    ...createNotificationsSlice(...a),
  }));
  const unwatch = watchEngine(deps, store);
  return { ...store, dispose: unwatch };
}

export * from './selectors.ts';
export type * from './types.ts';
