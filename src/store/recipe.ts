import { getMethod, isMethodName, METHODS, parseRecipe, usesWeights, WEIGHT, type MergeRecipe } from '../engine/index.ts';
import { coefficientOf } from './merge.ts';
import type { CheckpointEntry, CoefficientState, MethodInfo } from './types.ts';

/**
 * From the studio's state to a MergeRecipe (the same schema `dem merge` and the export use), and
 * the method list the picker shows, read from the engine's registry.
 */
export function baseOf(checkpoints: readonly CheckpointEntry[]): CheckpointEntry | undefined {
  return checkpoints.find((c) => c.role === 'base' && c.status === 'ready');
}

/** Fine-tunes that take part in the merge: loaded and without an error-level mismatch with the base. */
export function fineTunes(checkpoints: readonly CheckpointEntry[]): CheckpointEntry[] {
  return checkpoints.filter((c) => c.role === 'finetune' && c.status === 'ready' && !c.incompatible);
}

/** Data-mixing baselines: compared with (perplexity, task scores, the DEM-vs-mixing table), never merged. */
export function mixingBaselines(checkpoints: readonly CheckpointEntry[]): CheckpointEntry[] {
  return checkpoints.filter((c) => c.role === 'mixing' && c.status === 'ready');
}

/** The method picker's entries, straight from the engine's registry. */
export function methodInfos(): MethodInfo[] {
  return METHODS.map((m) => ({
    name: m.name,
    label: m.label,
    description: m.description,
    reference: m.reference,
    params: m.params.filter((p) => p.name !== WEIGHT),
    usesWeights: usesWeights(m),
    minModels: m.minModels,
    maxModels: m.maxModels,
  }));
}

export function coefficientValue(c: CoefficientState): number | number[] {
  return c.mode === 'layers' ? [...c.anchors] : c.value;
}

export interface RecipeInput {
  checkpoints: readonly CheckpointEntry[];
  method: string;
  params: Record<string, number | boolean>;
  coefficients: Record<string, CoefficientState>;
}

/**
 * The recipe for the current state; checkpoints named by id (for the engine) or by name (for the
 * files a user downloads). Throws InputError with the parser's message when it does not validate
 * (slerp with two fine-tunes, a density of 0 …). `override` replaces scalar weights by fine-tune id.
 */
export function buildRecipe(input: RecipeInput, naming: 'id' | 'name', override?: Record<string, number>): MergeRecipe {
  const base = baseOf(input.checkpoints);
  if (!base) throw new Error('no base checkpoint');
  const tunes = fineTunes(input.checkpoints);
  const method = isMethodName(input.method) ? getMethod(input.method) : undefined;
  const ref = (c: CheckpointEntry): string => (naming === 'id' ? c.id : c.name);
  const parameters: Record<string, unknown> = {};
  for (const spec of method?.params ?? []) {
    if (spec.name === WEIGHT) continue;
    const v = input.params[spec.name] ?? (spec.required ? spec.initial : undefined);
    if (v !== undefined) parameters[spec.name] = v;
  }
  const weighted = method ? usesWeights(method) : true;
  const raw = {
    version: 1,
    method: input.method,
    base: ref(base),
    models: tunes.map((t) => {
      const c = coefficientOf(input.coefficients, t.id);
      const weight = override?.[t.id] ?? coefficientValue(c);
      return { model: ref(t), parameters: weighted ? { [WEIGHT]: weight } : {} };
    }),
    parameters,
  };
  return parseRecipe(raw);
}
