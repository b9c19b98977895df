import { createContext, useContext, type ReactNode } from 'react';
import { useStore } from 'zustand';
import type { StudioState, StudioStore } from '../store/index.ts';

/** Binds the one studio store to React. Components read it only through `useStudio(selectX)`. */
const StudioContext = createContext<StudioStore | null>(null);

export function StudioProvider({ store, children }: { store: StudioStore; children: ReactNode }) {
  return <StudioContext.Provider value={store}>{children}</StudioContext.Provider>;
}

export function useStudio<T>(selector: (state: StudioState) => T): T {
  const store = useContext(StudioContext);
  if (!store) throw new Error('useStudio outside <StudioProvider>');
  return useStore(store, selector);
}

/** The store itself, for effects that subscribe outside rendering (keyboard, the page's URL). */
export function useStudioStore(): StudioStore {
  const store = useContext(StudioContext);
  if (!store) throw new Error('useStudioStore outside <StudioProvider>');
  return store;
}
