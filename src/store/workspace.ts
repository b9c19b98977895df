import type { StateCreator } from 'zustand/vanilla';
import { toErrorInfo } from '../worker/errors.ts';
import { newId } from './ids.ts';
import { errorNotice } from './notifications.ts';
import { baseOf, fineTunes } from './recipe.ts';
import type { CheckpointEntry, StoreDeps, StudioState, WorkspaceSlice } from './types.ts';

export const createWorkspaceSlice = ({ engine }: StoreDeps): StateCreator<StudioState, [], [], WorkspaceSlice> => {
  // Per-card AbortControllers live beside the state: they are not data.
  const controllers = new Map<string, AbortController>();
  let lastBase: string | undefined;
  let compatSeq = 0;

  return (set, get) => {
    const update = (id: string, patch: Partial<CheckpointEntry>): void =>
      set((s) => ({ checkpoints: s.checkpoints.map((c) => (c.id === id ? { ...c, ...patch } : c)) }));

    return {
      checkpoints: [],
      compat: {},

      addCheckpoint: async (name, files, restore) => {
        const id = restore?.id ?? newId('ckpt');
        const hasBase = get().checkpoints.some((c) => c.role === 'base' && c.status !== 'failed' && c.id !== id);
        const entry: CheckpointEntry = {
          id,
          name,
          role: restore?.role ?? (hasBase ? 'finetune' : 'base'),
          status: 'inspecting',
          summary: null,
          error: null,
          progress: null,
          files,
        };
        set((s) => ({
          checkpoints: s.checkpoints.some((c) => c.id === id) ? s.checkpoints.map((c) => (c.id === id ? entry : c)) : [...s.checkpoints, entry],
        }));
        const controller = new AbortController();
        controllers.set(id, controller);
        try {
          const summary = await engine.call('load', { key: id, name, files }, {
            signal: controller.signal,
            onProgress: (progress) => update(id, { progress }),
          });
          update(id, { status: 'ready', summary, progress: null, needsReselect: false });
          get().refresh();
        } catch (error) {
          const info = toErrorInfo(error);
          if (info.code === 'cancelled') {
            // The user asked for it: the card goes, nothing to report.
            set((s) => ({ checkpoints: s.checkpoints.filter((c) => c.id !== id) }));
          } else if (restore) {
            // Files from a previous session that can no longer be read (moved, changed, or the browser dropped them).
            const message = `Choose “${name}” again: its files from the last session could not be read (${info.message})`;
            update(id, { status: 'failed', error: { ...info, message }, progress: null, needsReselect: true });
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
        set((s) => {
          const coefficients = { ...s.coefficients };
          delete coefficients[id];
          return { checkpoints: s.checkpoints.filter((c) => c.id !== id), coefficients };
        });
        void engine.call('unload', { key: id }).catch(() => undefined);
        get().refresh();
      },

      setRole: (id, role) => {
        set((s) => ({
          checkpoints: s.checkpoints.map((c) => {
            if (c.id === id) return { ...c, role };
            if (role === 'base' && c.role === 'base') return { ...c, role: 'finetune' };
            return c;
          }),
        }));
        get().refresh();
      },

      refresh: () => {
        const s = get();
        const base = baseOf(s.checkpoints);
        const tunes = fineTunes(s.checkpoints);
        // Every ready fine-tune gets a coefficient (default 1: the plain DEM sum).
        const missing = tunes.filter((t) => !s.coefficients[t.id]);
        if (missing.length) {
          set((st) => ({
            coefficients: { ...st.coefficients, ...Object.fromEntries(missing.map((t) => [t.id, { mode: 'scalar' as const, value: 1, anchors: [1, 1, 1] }])) },
          }));
        }
        if (base && tunes.length) {
          const seq = ++compatSeq;
          void engine
            .call('compat', { base: base.id, models: tunes.map((t) => t.id) })
            .then((compat) => {
              if (seq === compatSeq) set({ compat });
            })
            .catch(() => undefined);
        } else set({ compat: {} });
        if (base?.id !== lastBase) {
          lastBase = base?.id;
          // Texts are token ids of one tokenizer: a new base means tokenizing again.
          get().retokenize();
        } else {
          get().refreshReferences();
          void get().evaluate();
        }
      },
    };
  };
};
