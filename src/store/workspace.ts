import type { StateCreator } from 'zustand/vanilla';
import { toErrorInfo } from '../worker/errors.ts';
import { errorNotice } from './notifications.ts';
import type { CheckpointEntry, StoreDeps, StudioState, WorkspaceSlice } from './types.ts';

export const createWorkspaceSlice = ({ engine }: StoreDeps): StateCreator<StudioState, [], [], WorkspaceSlice> => {
  let nextId = 1;
  // Per-card AbortControllers live beside the state: they are not data.
  const controllers = new Map<string, AbortController>();

  return (set, get) => {
    const update = (id: string, patch: Partial<CheckpointEntry>): void =>
      set((s) => ({ checkpoints: s.checkpoints.map((c) => (c.id === id ? { ...c, ...patch } : c)) }));

    return {
      checkpoints: [],

      addCheckpoint: async (name, files) => {
        const id = `ckpt-${nextId++}`;
        const hasBase = get().checkpoints.some((c) => c.role === 'base' && c.status !== 'failed');
        const entry: CheckpointEntry = {
          id,
          name,
          role: hasBase ? 'finetune' : 'base',
          status: 'inspecting',
          summary: null,
          error: null,
          progress: null,
          files,
        };
        set((s) => ({ checkpoints: [...s.checkpoints, entry] }));
        const controller = new AbortController();
        controllers.set(id, controller);
        try {
          const summary = await engine.inspect(name, files, {
            signal: controller.signal,
            onProgress: (progress) => update(id, { progress }),
          });
          update(id, { status: 'ready', summary, progress: null });
        } catch (error) {
          const info = toErrorInfo(error);
          if (info.code === 'cancelled') {
            // The user asked for it: the card goes, nothing to report.
            set((s) => ({ checkpoints: s.checkpoints.filter((c) => c.id !== id) }));
          } else {
            update(id, { status: 'failed', error: info, progress: null });
            get().notify(errorNotice(`Could not load “${name}”`, info));
          }
        } finally {
          controllers.delete(id);
        }
        return id;
      },

      cancelCheckpoint: (id) => controllers.get(id)?.abort(),

      removeCheckpoint: (id) => {
        controllers.get(id)?.abort();
        set((s) => ({ checkpoints: s.checkpoints.filter((c) => c.id !== id) }));
      },

      setRole: (id, role) =>
        set((s) => ({
          checkpoints: s.checkpoints.map((c) => {
            if (c.id === id) return { ...c, role };
            if (role === 'base' && c.role === 'base') return { ...c, role: 'finetune' };
            return c;
          }),
        })),
    };
  };
};
