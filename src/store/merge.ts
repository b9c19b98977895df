import type { StateCreator } from 'zustand/vanilla';
import { DEFAULT_METHOD, type MergeRecipe } from '../engine/index.ts';
import { errorRecord, isCancelled } from './errors.ts';
import { baseOf, buildRecipe, fineTunes, methodInfos, mixingBaselines } from './recipe.ts';
import type { CoefficientState, MergeSlice, StoreDeps, StudioState } from './types.ts';

/** Slider range of a coefficient ω (the paper allows negative and > 1 weights). */
export const COEF_MIN = -1;
export const COEF_MAX = 2;
const clampCoef = (v: number): number => Math.min(COEF_MAX, Math.max(COEF_MIN, Math.round(v * 100) / 100));

/**
 * A fine-tune's coefficient until the user moves it: ω = 1 (the plain DEM sum Θ + Σ Δᵢ) as a
 * scalar; switched to a per-layer curve it starts flat at ω with `anchors` anchors (3 unless the
 * curve already has another count).
 */
export function defaultCoefficient(anchors = 3): CoefficientState {
  return { mode: 'scalar', value: 1, anchors: Array.from({ length: anchors }, () => 1) };
}

/** The coefficient of fine-tune `id`: its own, or the default. */
export function coefficientOf(coefficients: Readonly<Record<string, CoefficientState>>, id: string): CoefficientState {
  return coefficients[id] ?? defaultCoefficient();
}

/** The recipe the engine merges now: ids for checkpoints; the base alone when there are no fine-tunes. */
export function engineRecipe(s: StudioState, override?: Record<string, number>): MergeRecipe {
  const base = baseOf(s.checkpoints)!;
  if (fineTunes(s.checkpoints).length === 0) return { version: 1, method: DEFAULT_METHOD, base: base.id, models: [], parameters: {} };
  return buildRecipe(s, 'id', override);
}

export const createMergeSlice = ({ engine }: StoreDeps): StateCreator<StudioState, [], [], MergeSlice> => {
  let current: AbortController | undefined;
  let referencesRunning = false;

  return (set, get) => {
    const setCoef = (id: string, patch: (c: CoefficientState) => Partial<CoefficientState>): void => {
      set((s) => {
        const c = coefficientOf(s.coefficients, id);
        return { coefficients: { ...s.coefficients, [id]: { ...c, ...patch(c) } } };
      });
      void get().evaluate();
    };

    return {
      methods: methodInfos(),
      method: DEFAULT_METHOD,
      params: {},
      coefficients: {},
      perplexities: {},
      evalStatus: 'idle',
      evalError: null,
      evalHint: 'Add a base checkpoint and a validation text to measure perplexity.',
      timings: null,
      references: {},

      setMethod: (method) => {
        set({ method });
        void get().evaluate();
      },
      setParam: (name, value) => {
        set((s) => ({ params: { ...s.params, [name]: value } }));
        void get().evaluate();
      },
      setCoefficient: (id, value) => setCoef(id, () => ({ value: clampCoef(value) })),
      setCoefficientMode: (id, mode) => setCoef(id, (c) => ({ mode, anchors: mode === 'layers' && c.mode !== 'layers' ? c.anchors.map(() => c.value) : c.anchors })),
      setAnchor: (id, index, value) => setCoef(id, (c) => ({ anchors: c.anchors.map((a, i) => (i === index ? clampCoef(value) : a)) })),
      setAnchorCount: (id, count) =>
        setCoef(id, (c) => {
          const n = Math.max(2, Math.min(8, Math.round(count)));
          // Resample the current curve at the new anchor positions (linear interpolation).
          const anchors = Array.from({ length: n }, (_, i) => {
            const t = (i / (n - 1)) * (c.anchors.length - 1);
            const lo = Math.floor(t);
            const hi = Math.min(c.anchors.length - 1, lo + 1);
            return clampCoef(c.anchors[lo]! + (t - lo) * (c.anchors[hi]! - c.anchors[lo]!));
          });
          return { anchors };
        }),
      resetCoefficient: (id) =>
        setCoef(id, (c) => {
          // The mode and the number of anchors stay; the values go back to the default.
          const { value, anchors } = defaultCoefficient(c.anchors.length);
          return { value, anchors };
        }),

      copyCoefficient: (from, to) => {
        const c = get().coefficients[from];
        if (c) set((s) => ({ coefficients: { ...s.coefficients, [to]: c } }));
      },

      refreshReferences: () => {
        if (referencesRunning) return;
        const run = async (): Promise<void> => {
          referencesRunning = true;
          try {
            for (;;) {
              const s = get();
              const sets = s.validationSets.filter((v) => v.status === 'ready').map((v) => v.id);
              const base = baseOf(s.checkpoints);
              if (!base || sets.length === 0) return;
              const todo = [base, ...fineTunes(s.checkpoints), ...mixingBaselines(s.checkpoints)].find((c) => sets.some((v) => s.references[`${c.id}|${v}`] === undefined));
              if (!todo) return;
              const missing = sets.filter((v) => s.references[`${todo.id}|${v}`] === undefined);
              const result = await engine.call('reference', { checkpoint: todo.id, sets: missing });
              set((st) => ({ references: { ...st.references, ...Object.fromEntries(result.map((r) => [`${todo.id}|${r.set}`, r.ppl])) } }));
            }
          } catch {
            // A checkpoint the forward pass cannot run shows its error through evaluate().
          } finally {
            referencesRunning = false;
          }
        };
        void run();
      },

      evaluate: async () => {
        current?.abort();
        const s = get();
        const base = baseOf(s.checkpoints);
        const sets = s.validationSets.filter((v) => v.status === 'ready').map((v) => v.id);
        const hint = !base
          ? 'Add a base checkpoint (with tokenizer.json) to measure perplexity.'
          : sets.length === 0
            ? 'Add a validation text to measure perplexity.'
            : s.gpuStatus !== 'ready' && s.gpuStatus !== 'idle' && s.gpuStatus !== 'connecting'
              ? 'The GPU is not available.'
              : null;
        if (hint) {
          set({ evalStatus: 'idle', evalHint: hint, evalError: null });
          return;
        }
        let recipe: MergeRecipe;
        try {
          recipe = engineRecipe(s);
        } catch (error) {
          set({ evalStatus: 'failed', evalError: errorRecord(error), evalHint: null });
          return;
        }
        const controller = new AbortController();
        current = controller;
        set({ evalStatus: 'running', evalHint: null });
        const t0 = performance.now();
        try {
          const r = await engine.call('evaluate', { recipe, sets }, { signal: controller.signal });
          if (current !== controller) return;
          set({
            evalStatus: 'done',
            evalError: null,
            perplexities: Object.fromEntries(r.perplexities.map((p) => [p.set, p.ppl])),
            timings: { setupMs: r.setupMs, mergeMs: r.mergeMs, evalMs: r.evalMs, totalMs: r.totalMs, roundTripMs: performance.now() - t0, mode: r.mode },
          });
          // Task scores of the same merge right after: a newer evaluate() cancels both.
          await get().scoreCurrentTasks(recipe, controller.signal, () => current === controller);
        } catch (error) {
          const info = errorRecord(error);
          if (isCancelled(info) || current !== controller) return;
          set({ evalStatus: 'failed', evalError: info });
        }
      },
    };
  };
};
