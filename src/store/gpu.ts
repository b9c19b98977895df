import type { StateCreator } from 'zustand/vanilla';
import { errorRecord } from './errors.ts';
import type { GpuSlice, StoreDeps, StudioState } from './types.ts';

export const createGpuSlice =
  ({ engine, memoryBudget }: StoreDeps): StateCreator<StudioState, [], [], GpuSlice> =>
  (set, get) => ({
    gpuStatus: 'idle',
    adapter: null,
    gpuError: null,
    connectGpu: async () => {
      const before = get().gpuStatus;
      if (before === 'connecting') return;
      // A crashed Worker is replaced; a lost device is re-requested by the same Worker.
      if (before === 'crashed') engine.restart();
      set({ gpuStatus: 'connecting', gpuError: null });
      try {
        const adapter = await engine.init(memoryBudget === undefined ? {} : { memoryBudget });
        set({ gpuStatus: 'ready', adapter, gpuError: null });
        void get().evaluate();
      } catch (error) {
        const info = errorRecord(error);
        const status = info.code === 'worker-crashed' ? 'crashed' : 'unavailable';
        set({ gpuStatus: status, adapter: null, gpuError: info });
      }
    },
  });

/** Wires the engine's unsolicited failures into the store; returns the unsubscribe. */
export function watchEngine({ engine }: StoreDeps, store: { getState: () => StudioState; setState: (p: Partial<StudioState>) => void }): () => void {
  const offLost = engine.onDeviceLost((error) => {
    store.setState({ gpuStatus: 'lost', gpuError: store.getState().reportError('GPU device lost', error) });
  });
  const offCrash = engine.onCrash((error) => {
    store.setState({ gpuStatus: 'crashed', adapter: null, gpuError: store.getState().reportError('Engine stopped', error) });
  });
  return () => {
    offLost();
    offCrash();
  };
}
