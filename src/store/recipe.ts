import { METHODS, METHOD_NAMES, METHOD_SPECS, parseRecipe, type MergeRecipe, type MethodName } from '../engine/index.ts';
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

/** Methods both the registry (kernels) and the recipe schema know, with their controls. */
export function methodInfos(): MethodInfo[] {
  return METHODS.filter((m) => (METHOD_NAMES as readonly string[]).includes(m.name)).map((m) => {
    const spec = METHOD_SPECS[m.name as MethodName];
    const params = [...m.params];
    if (spec.globalParams.includes('seed') && !params.some((p) => p.name === 'seed')) {
      params.push({ name: 'seed', type: 'number', default: 0, min: 0, max: 0xffffffff, description: "DARE's random drop-mask seed (same seed → same merge)." });
    }
    return {
      name: m.name,
      description: m.description,
      reference: m.reference,
      params,
      usesWeights: spec.modelParams.includes('weight'),
      minModels: spec.minModels,
      maxModels: spec.maxModels,
    };
  });
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
  const spec = METHOD_SPECS[input.method as MethodName];
  const ref = (c: CheckpointEntry): string => (naming === 'id' ? c.id : c.name);
  const parameters: Record<string, unknown> = {};
  if (spec) {
    const allowed: string[] = [...spec.globalParams, ...spec.modelParams.filter((p) => p !== 'weight')];
    for (const [k, v] of Object.entries(input.params)) if (allowed.includes(k)) parameters[k] = v;
    if (spec.requiredGlobalParams.includes('t') && parameters.t === undefined) parameters.t = 0.5;
  }
  const usesWeights = spec ? spec.modelParams.includes('weight') : true;
  const raw = {
    version: 1,
    method: input.method,
    base: ref(base),
    models: tunes.map((t) => {
      const c = coefficientOf(input.coefficients, t.id);
      const weight = override?.[t.id] ?? coefficientValue(c);
      return { model: ref(t), parameters: usesWeights ? { weight } : {} };
    }),
    parameters,
  };
  return parseRecipe(raw);
}
