import type { StudioState } from './types.ts';

/** One selector per field (STYLE habit 12): components subscribe to exactly what they render. */
type Selector<K extends keyof StudioState> = (state: StudioState) => StudioState[K];
const field =
  <K extends keyof StudioState>(key: K): Selector<K> =>
  (state) =>
    state[key];

export const selectGpuStatus = field('gpuStatus');
export const selectAdapter = field('adapter');
export const selectGpuError = field('gpuError');
export const selectConnectGpu = field('connectGpu');

export const selectCheckpoints = field('checkpoints');
export const selectAddCheckpoint = field('addCheckpoint');
export const selectCancelCheckpoint = field('cancelCheckpoint');
export const selectRemoveCheckpoint = field('removeCheckpoint');
export const selectSetRole = field('setRole');

export const selectNotifications = field('notifications');
export const selectNotify = field('notify');
export const selectDismiss = field('dismiss');
