import type { StateCreator } from 'zustand/vanilla';
import { dominantFloatDtype, dtypeName, modelCard, recipeToJson, recipeToMergekitYaml } from '../engine/index.ts';
import { errorRecord, isCancelled } from './errors.ts';
import { engineRecipe } from './merge.ts';
import { baseOf, buildRecipe, fineTunes } from './recipe.ts';
import type { InsightSlice, StoreDeps, StudioState } from './types.ts';

/** Understanding and shipping a merge: layer distances, a generation preview, export. */
export const createInsightSlice = ({ engine }: StoreDeps): StateCreator<StudioState, [], [], InsightSlice> => {
  let generating: AbortController | undefined;
  return (set, get) => ({
    layers: null,
    layersStatus: 'idle',
    generation: null,
    generationStatus: 'idle',
    exportStatus: 'idle',
    exportFiles: [],

    analyzeLayers: async () => {
      const s = get();
      const base = baseOf(s.checkpoints);
      const tunes = fineTunes(s.checkpoints);
      if (!base || tunes.length === 0) return;
      set({ layersStatus: 'running' });
      try {
        const layers = await engine.call('layers', { base: base.id, models: tunes.map((t) => t.id) });
        // The engine names models by checkpoint name already.
        set({ layers, layersStatus: 'done' });
      } catch (error) {
        set({ layersStatus: 'failed' });
        get().reportError('Layer distances failed', error);
      }
    },

    generatePreview: async (prompt, maxTokens) => {
      generating?.abort();
      const controller = new AbortController();
      generating = controller;
      const s = get();
      const base = baseOf(s.checkpoints);
      if (!base) return;
      set({ generationStatus: 'running' });
      try {
        const generation = await engine.call('generate', { recipe: engineRecipe(s), base: base.id, prompt, maxTokens }, { signal: controller.signal });
        if (generating === controller) set({ generation, generationStatus: 'done' });
      } catch (error) {
        if (isCancelled(errorRecord(error)) || generating !== controller) return;
        set({ generationStatus: 'failed' });
        get().reportError('Generation failed', error);
      }
    },

    exportMerge: async (target) => {
      // Numbers measured on compressed Δ are re-scored on the exact merge before it is exported.
      if (get().approximate) await get().evaluate({ exact: true });
      const s = get();
      const base = baseOf(s.checkpoints);
      if (!base) return null;
      const files = get().recipeFiles();
      set({ exportStatus: 'running', exportFiles: [] });
      try {
        if ('error' in files) throw new Error(files.error);
        const r = await engine.call('export', {
          base: base.id,
          recipe: engineRecipe(s),
          target,
          extraFiles: { 'dem-recipe.json': files.json, 'mergekit_config.yml': files.yaml, 'README.md': files.card },
        });
        set({ exportStatus: 'done', exportFiles: r.files });
        return r.zip ?? null;
      } catch (error) {
        set({ exportStatus: 'failed' });
        get().reportError('Export failed', error);
        return null;
      }
    },

    recipeFiles: () => {
      try {
        const recipe = buildRecipe(get(), 'name');
        const baseDtype = dominantFloatDtype(baseOf(get().checkpoints)?.summary?.tensors ?? []) ?? 'F32';
        return { json: recipeToJson(recipe), yaml: recipeToMergekitYaml(recipe, dtypeName(baseDtype)), card: modelCard(recipe, dtypeName(baseDtype)) };
      } catch (error) {
        return { error: errorRecord(error).message };
      }
    },
  });
};
