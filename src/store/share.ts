import { canonicalRecipe, parseRecipe, WEIGHT, type MergeRecipe } from '../engine/index.ts';
import { coefficientOf, defaultCoefficient } from './merge.ts';
import { fineTunes, methodInfos } from './recipe.ts';
import type { CheckpointEntry, CoefficientState, RecipeSnapshot } from './types.ts';

/**
 * A recipe (imported file or the page's URL) as the studio's controls: the method, one value per
 * parameter and a coefficient per loaded fine-tune. Models are matched to loaded fine-tunes by name
 * or by a path's last part (a YAML exported by `dem merge` names folders). What the controls cannot
 * hold — per-model values of a parameter that differ, name filters, a curve of more than 8 anchors —
 * is refused rather than applied in part.
 */
export function recipeToControls(
  input: MergeRecipe,
  checkpoints: readonly CheckpointEntry[],
  current: Readonly<Record<string, CoefficientState>>,
): { ok: true; snapshot: RecipeSnapshot; unmatched: string[] } | { ok: false; error: string } {
  const recipe = canonicalRecipe(input);
  const info = methodInfos().find((m) => m.name === recipe.method)!;
  const params: Record<string, number | boolean | string> = {};
  for (const [key, value] of Object.entries(recipe.parameters)) {
    if (typeof value !== 'number' && typeof value !== 'boolean' && typeof value !== 'string') return { ok: false, error: `parameters.${key}: the studio holds one value per parameter (no gradients or filters)` };
    params[key] = value;
  }
  // Per-model values of a parameter other than ω: one shared value becomes the parameter's.
  for (const spec of info.params) {
    const values = recipe.models.map((m) => m.parameters[spec.name]).filter((v) => v !== undefined);
    if (values.length === 0) continue;
    const first = values[0];
    if ((typeof first !== 'number' && typeof first !== 'string') || values.length !== recipe.models.length || values.some((v) => v !== first)) {
      return { ok: false, error: `models[].parameters.${spec.name}: the studio holds one ${spec.name} for all models; this recipe gives each its own` };
    }
    params[spec.name] = first;
  }
  const tunes = fineTunes(checkpoints);
  const lastPart = (id: string): string => id.replace(/[\\/]+$/, '').split(/[\\/]/).pop() ?? id;
  const coefficients: Record<string, CoefficientState> = { ...current };
  const matched = new Set<string>();
  const unmatched: string[] = [];
  for (const m of recipe.models) {
    const tune = tunes.find((t) => t.name === m.model) ?? tunes.find((t) => t.name === lastPart(m.model));
    if (!tune) {
      unmatched.push(m.model);
      continue;
    }
    matched.add(tune.id);
    const w = m.parameters[WEIGHT];
    const c = coefficientOf(current, tune.id);
    if (w === undefined) continue;
    if (typeof w === 'number') coefficients[tune.id] = { ...c, mode: 'scalar', value: w };
    else if (Array.isArray(w) && w.length >= 2 && w.length <= 8 && w.every((x) => typeof x === 'number')) coefficients[tune.id] = { ...c, mode: 'layers', anchors: [...(w as number[])] };
    else return { ok: false, error: `${m.model}: weight ${JSON.stringify(w)} is not a number or a curve of 2–8 anchors (the studio's sliders)` };
  }
  // Loaded fine-tunes the recipe leaves out are out of the merge: ω = 0.
  if (info.usesWeights) {
    for (const t of tunes) if (!matched.has(t.id)) coefficients[t.id] = { ...defaultCoefficient(coefficientOf(current, t.id).anchors.length), value: 0 };
  }
  return { ok: true, snapshot: { method: recipe.method, params, coefficients }, unmatched };
}

const HASH_KEY = 'recipe';

/** The URL fragment that carries a recipe named by checkpoint names: `#recipe=<JSON>`. */
export function recipeHash(recipe: MergeRecipe): string {
  const r = canonicalRecipe(recipe);
  const compact = { method: r.method, parameters: r.parameters, models: r.models.map((m) => ({ model: m.model, parameters: m.parameters })), base: r.base, version: 1 };
  return `#${HASH_KEY}=${encodeURIComponent(JSON.stringify(compact))}`;
}

/** The recipe in a URL fragment, undefined when there is none; throws InputError when it does not parse. */
export function recipeFromHash(hash: string): MergeRecipe | undefined {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const text = params.get(HASH_KEY);
  if (text === null) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return parseRecipe(text, 'the page address');
  }
  return parseRecipe(json, 'the page address');
}
