import type { StateCreator } from 'zustand/vanilla';
import { checkTextNotBlank } from '../engine/index.ts';
import { errorRecord } from './errors.ts';
import { newId } from './ids.ts';
import { baseOf } from './recipe.ts';
import type { StoreDeps, StudioState, ValidationSet, ValidationSlice } from './types.ts';

/** Validation sets: one text per data distribution, tokenized in the Worker with the base's tokenizer. */
export const createValidationSlice = ({ engine }: StoreDeps): StateCreator<StudioState, [], [], ValidationSlice> => {
  return (set, get) => {
    const update = (id: string, patch: Partial<ValidationSet>): void =>
      set((s) => ({ validationSets: s.validationSets.map((v) => (v.id === id ? { ...v, ...patch } : v)) }));

    const tokenize = async (id: string): Promise<void> => {
      const entry = get().validationSets.find((v) => v.id === id);
      if (!entry) return;
      try {
        checkTextNotBlank(entry.name, entry.text);
      } catch (error) {
        update(id, { status: 'failed', tokens: null, error: errorRecord(error) });
        return;
      }
      const base = baseOf(get().checkpoints);
      if (!base) {
        update(id, { status: 'waiting', tokens: null, error: null });
        return;
      }
      update(id, { status: 'tokenizing', error: null });
      try {
        const { tokens } = await engine.call('tokenize', { key: id, name: entry.name, text: entry.text, base: base.id });
        // A newer base may have taken over meanwhile; its own pass will set the state.
        if (baseOf(get().checkpoints)?.id !== base.id) return;
        update(id, { status: 'ready', tokens, error: null });
      } catch (error) {
        update(id, { status: 'failed', tokens: null, error: errorRecord(error) });
      }
    };

    return {
      validationSets: [],

      addValidationText: async (name, text, restoreId?: string) => {
        const id = restoreId ?? newId('text');
        const clean = name.trim() || `text ${get().validationSets.length + 1}`;
        set((s) => ({ validationSets: [...s.validationSets, { id, name: clean, text, status: 'waiting', tokens: null, error: null }] }));
        await tokenize(id);
        get().refreshReferences();
        void get().evaluate();
        return id;
      },

      removeValidationText: (id) => {
        set((s) => ({ validationSets: s.validationSets.filter((v) => v.id !== id) }));
        get().removeTaskFile(id);
        void engine.call('unload', { key: id }).catch(() => undefined);
        void get().evaluate();
      },

      retokenize: () => {
        void Promise.all([...get().validationSets.map((v) => tokenize(v.id)), get().retokenizeTasks()]).then(() => {
          get().refreshReferences();
          void get().evaluate();
        });
      },
    };
  };
};
