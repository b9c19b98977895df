import type { StateCreator } from 'zustand/vanilla';
import { errorRecord, isCancelled } from './errors.ts';
import { newId } from './ids.ts';
import { defaultCoefficient } from './merge.ts';
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
        const baseEntry = get().checkpoints.find((c) => c.role === 'base' && c.status !== 'failed' && c.id !== id);
        const hasBase = baseEntry !== undefined;
        // A LoRA adapter folder is read over the workspace's base (a fine-tune, never the base itself).
        const adapter = files.some((f) => f.path === 'adapter_config.json');
        const entry: CheckpointEntry = {
          id,
          name,
          role: restore?.role ?? (hasBase || adapter ? 'finetune' : 'base'),
          status: 'inspecting',
          summary: null,
          error: null,
          progress: null,
          files,
          ...(restore?.transient ? { transient: true } : {}),
        };
        set((s) => ({
          checkpoints: s.checkpoints.some((c) => c.id === id) ? s.checkpoints.map((c) => (c.id === id ? entry : c)) : [...s.checkpoints, entry],
        }));
        const controller = new AbortController();
        controllers.set(id, controller);
        try {
          // The base must be open in the engine before an adapter is read over it (restores add every card at once).
          while (adapter && baseEntry && get().checkpoints.find((c) => c.id === baseEntry.id)?.status === 'inspecting') await new Promise((r) => setTimeout(r, 50));
          const summary = await engine.call('load', { key: id, name, files, ...(adapter && baseEntry ? { base: baseEntry.id } : {}) }, {
            signal: controller.signal,
            onProgress: (progress) => update(id, { progress }),
          });
          update(id, { status: 'ready', summary, progress: null, needsReselect: false });
          get().refresh();
        } catch (error) {
          const info = errorRecord(error);
          if (isCancelled(info)) {
            // The user asked for it: the card goes, nothing to report.
            set((s) => ({ checkpoints: s.checkpoints.filter((c) => c.id !== id) }));
          } else if (restore) {
            // Files from a previous session that can no longer be read (moved, changed, or the browser dropped them).
            const message = `Choose “${name}” again: its files from the last session could not be read (${info.message})`;
            update(id, { status: 'failed', error: { ...info, message }, progress: null, needsReselect: true });
          } else {
            update(id, { status: 'failed', error: get().reportError(`Could not load “${name}”`, error), progress: null });
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

      replaceCheckpointFiles: (id, from, to) => {
        // The engine keeps reading what it was given; only the card (and what is persisted) changes.
        set((s) => ({ checkpoints: s.checkpoints.map((c) => (c.id === id && c.files === from ? { ...c, files: to } : c)) }));
      },

      refresh: () => {
        const s = get();
        const base = baseOf(s.checkpoints);
        const all = s.checkpoints.filter((c) => c.role === 'finetune' && c.status === 'ready');
        const seq = ++compatSeq;
        const check = async (): Promise<void> => {
          if (!base || all.length === 0) {
            set((st) => ({ compat: {}, checkpoints: st.checkpoints.map((c) => (c.incompatible ? { ...c, incompatible: false } : c)) }));
            return;
          }
          try {
            const compat = await engine.call('compat', { base: base.id, models: all.map((t) => t.id) });
            if (seq !== compatSeq) return;
            const bad = new Set(Object.entries(compat).filter(([, items]) => items.some((i) => i.severity === 'error')).map(([id]) => id));
            set((st) => ({
              compat,
              checkpoints: st.checkpoints.map((c) => (c.role === 'finetune' && !!c.incompatible !== bad.has(c.id) ? { ...c, incompatible: bad.has(c.id) } : c)),
            }));
          } catch {
            // The cards already show load errors; compatibility is informational.
          }
        };
        void check().then(() => {
          if (seq !== compatSeq) return;
          const st = get();
          // Every fine-tune in the merge gets a coefficient (the default: the plain DEM sum).
          const missing = fineTunes(st.checkpoints).filter((t) => !st.coefficients[t.id]);
          if (missing.length) {
            set((x) => ({
              coefficients: { ...x.coefficients, ...Object.fromEntries(missing.map((t) => [t.id, defaultCoefficient()])) },
            }));
          }
          if (base?.id !== lastBase) {
            lastBase = base?.id;
            // Texts are token ids of one tokenizer: a new base means tokenizing again.
            get().retokenize();
          } else {
            get().refreshReferences();
            void get().evaluate();
          }
        });
      },
    };
  };
};
