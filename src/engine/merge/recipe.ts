/**
 * The studio's merge recipe: which method, which base, which fine-tunes with which coefficients.
 * Parsed once at the boundary (JSON here, mergekit YAML in yaml.ts) with cross-field checks, so
 * the merge code downstream never sees an ill-formed recipe (STYLE habit 9, mergekit `config.py`).
 *
 * Semantics follow mergekit (arcee-ai/mergekit, `config.py`, `plan.py`, `merge_methods/`):
 * - A coefficient is a scalar, a gradient (list interpolated across layer depth), or a list of
 *   `{filter, value}` entries: the first entry whose filter is a substring of the tensor name wins;
 *   an entry without filter (or with filter `*`) matches every tensor. See coefficients.ts.
 * - Per-model parameters fall back to the same-named global parameter, then to the method default.
 * - For the task-vector methods, slerp and model_stock, the base may also be listed among the
 *   models (mergekit's habit); such an entry is dropped, since those methods take nothing from it
 *   but the base tensor itself. For `linear` the base is an ordinary input when listed.
 */
import { InputError } from '../errors.ts';

/** The merge methods a recipe can name (the kernels live in registry.ts / methods/). */
export const METHOD_NAMES = [
  'task_arithmetic',
  'linear',
  'ties',
  'dare_linear',
  'dare_ties',
  'breadcrumbs',
  'breadcrumbs_ties',
  'slerp',
  'model_stock',
] as const;
export type MethodName = (typeof METHOD_NAMES)[number];

export const DTYPES = ['float32', 'float16', 'bfloat16'] as const;
export type RecipeDtype = (typeof DTYPES)[number];

/** One entry of a filtered coefficient; `filter` absent (or `*`) = matches every tensor. */
export interface FilteredValue {
  filter?: string;
  value: number | number[];
}
/** Scalar, gradient across layer depth, or first-match-wins list of tensor-name filters. */
export type Coefficient = number | number[] | FilteredValue[];

export type ModelParamName = 'weight' | 'density' | 'gamma';
export type GlobalOnlyParamName = 'lambda' | 'normalize' | 't' | 'seed';

export interface ModelParameters {
  /** ω_i: scales the model's task vector (or its tensor for `linear`). */
  weight?: Coefficient;
  /** Fraction of each task vector kept, in (0, 1] (ties, dare_*, breadcrumbs). */
  density?: Coefficient;
  /** Fraction of largest-magnitude entries removed, in [0, 1) (breadcrumbs). */
  gamma?: Coefficient;
}

export interface RecipeModel {
  /** Checkpoint id or path. */
  model: string;
  parameters: ModelParameters;
}

/** Global parameters; weight/density/gamma here are fallbacks for every model. */
export interface GlobalParameters extends ModelParameters {
  /** Scales the merged task vector (task-vector methods); default 1. */
  lambda?: number;
  /** Divide by the sum of weights (linear, ties default true; others false). */
  normalize?: boolean;
  /** slerp interpolation: 0 = base, 1 = the other model; required for slerp. */
  t?: Coefficient;
  /** DARE's random drop mask seed (studio extension; mergekit ignores it). */
  seed?: number;
}

export interface MergeRecipe {
  version: 1;
  method: MethodName;
  /** Checkpoint id or path of the base the fine-tunes were trained from. */
  base: string;
  models: RecipeModel[];
  parameters: GlobalParameters;
  /** Output dtype of the merged checkpoint; absent = the base's dtype. */
  dtype?: RecipeDtype;
}

/** What a method takes, and its mergekit defaults. */
export interface MethodRecipeSpec {
  /** Per-model parameters (also accepted under `parameters` as fallbacks). */
  modelParams: readonly ModelParamName[];
  /** Per-model parameters that must resolve for every input model. */
  requiredModelParams: readonly ModelParamName[];
  /** Parameters accepted only under the global `parameters`. */
  globalParams: readonly GlobalOnlyParamName[];
  requiredGlobalParams: readonly GlobalOnlyParamName[];
  /** Defaults; parseRecipe writes the global ones into the recipe so it reads explicitly. */
  defaults: { lambda?: number; normalize?: boolean; seed?: number; weight?: number; density?: number; gamma?: number };
  /** Number of input models other than the base. */
  minModels: number;
  maxModels: number;
  /** Listed base is an ordinary weighted input (linear) rather than dropped. */
  baseIsInput: boolean;
}

const GTA_GLOBALS = ['lambda', 'normalize'] as const;

/** Defaults from mergekit `merge_methods/registry.py` (GeneralizedTaskArithmeticMerge, LinearMerge, ...). */
export const METHOD_SPECS: Readonly<Record<MethodName, MethodRecipeSpec>> = {
  linear: {
    modelParams: ['weight'],
    requiredModelParams: ['weight'],
    globalParams: ['normalize'],
    requiredGlobalParams: [],
    defaults: { normalize: true },
    minModels: 1,
    maxModels: Infinity,
    baseIsInput: true,
  },
  task_arithmetic: {
    modelParams: ['weight'],
    requiredModelParams: ['weight'],
    globalParams: GTA_GLOBALS,
    requiredGlobalParams: [],
    defaults: { lambda: 1, normalize: false },
    minModels: 1,
    maxModels: Infinity,
    baseIsInput: false,
  },
  ties: {
    modelParams: ['weight', 'density'],
    requiredModelParams: ['weight'],
    globalParams: GTA_GLOBALS,
    requiredGlobalParams: [],
    defaults: { lambda: 1, normalize: true, density: 1 },
    minModels: 1,
    maxModels: Infinity,
    baseIsInput: false,
  },
  dare_linear: {
    modelParams: ['weight', 'density'],
    requiredModelParams: ['weight'],
    globalParams: [...GTA_GLOBALS, 'seed'],
    requiredGlobalParams: [],
    defaults: { lambda: 1, normalize: false, seed: 0, density: 1 },
    minModels: 1,
    maxModels: Infinity,
    baseIsInput: false,
  },
  dare_ties: {
    modelParams: ['weight', 'density'],
    requiredModelParams: ['weight'],
    globalParams: [...GTA_GLOBALS, 'seed'],
    requiredGlobalParams: [],
    // mergekit's dare_ties does not normalize by default (unlike ties).
    defaults: { lambda: 1, normalize: false, seed: 0, density: 1 },
    minModels: 1,
    maxModels: Infinity,
    baseIsInput: false,
  },
  breadcrumbs: {
    modelParams: ['weight', 'density', 'gamma'],
    requiredModelParams: ['weight'],
    globalParams: GTA_GLOBALS,
    requiredGlobalParams: [],
    defaults: { lambda: 1, normalize: false, density: 1, gamma: 0.01 },
    minModels: 1,
    maxModels: Infinity,
    baseIsInput: false,
  },
  // Breadcrumbs sparsification followed by TIES sign election (mergekit `breadcrumbs_ties`).
  breadcrumbs_ties: {
    modelParams: ['weight', 'density', 'gamma'],
    requiredModelParams: ['weight'],
    globalParams: GTA_GLOBALS,
    requiredGlobalParams: [],
    defaults: { lambda: 1, normalize: false, density: 1, gamma: 0.01 },
    minModels: 1,
    maxModels: Infinity,
    baseIsInput: false,
  },
  slerp: {
    modelParams: [],
    requiredModelParams: [],
    globalParams: ['t'],
    requiredGlobalParams: ['t'],
    defaults: {},
    minModels: 1,
    maxModels: 1,
    baseIsInput: false,
  },
  model_stock: {
    modelParams: [],
    requiredModelParams: [],
    globalParams: [],
    requiredGlobalParams: [],
    defaults: {},
    // mergekit: "at least 3 models (base plus two+ others)".
    minModels: 2,
    maxModels: Infinity,
    baseIsInput: false,
  },
};

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && (METHOD_NAMES as readonly string[]).includes(name);
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** How the parser names top-level fields in messages (the YAML importer uses mergekit's names). */
export interface FieldNames {
  method: string;
  base: string;
  /** Key of the per-model checkpoint field in `models[i]`. */
  model: string;
}
const JSON_NAMES: FieldNames = { method: 'method', base: 'base', model: 'model' };

interface Ctx {
  file?: string;
  names: FieldNames;
}

function fail(ctx: Ctx, path: string, message: string): never {
  throw new InputError(path ? `${path}: ${message}` : message, { file: ctx.file });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return String(v);
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

function parseFiniteNumber(v: unknown, path: string, ctx: Ctx): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(ctx, path, `expected a finite number, got ${describe(v)}`);
  return v;
}

function parseScalarOrGradient(v: unknown, path: string, ctx: Ctx): number | number[] {
  if (Array.isArray(v)) {
    if (v.length === 0) fail(ctx, path, 'a gradient needs at least one value');
    return v.map((e, i) => parseFiniteNumber(e, join(path, i), ctx));
  }
  return parseFiniteNumber(v, path, ctx);
}

/**
 * Parses a coefficient: a number, a non-empty list of numbers (gradient), or filter entries
 * `{filter?, value}` (a single entry object is accepted and wrapped in a list, as mergekit does).
 */
export function parseCoefficient(v: unknown, path: string, file?: string): Coefficient {
  return parseCoeff(v, path, { file, names: JSON_NAMES });
}

function parseCoeff(v: unknown, path: string, ctx: Ctx): Coefficient {
  if (typeof v === 'number') return parseFiniteNumber(v, path, ctx);
  if (isPlainObject(v)) return [parseFilterEntry(v, path, ctx)];
  if (!Array.isArray(v)) {
    fail(ctx, path, `expected a number, a list of numbers (gradient across layers) or a list of {filter, value}, got ${describe(v)}`);
  }
  if (v.length === 0) fail(ctx, path, 'empty list: give a number, a gradient or {filter, value} entries');
  if (v.every((e) => typeof e === 'number')) return parseScalarOrGradient(v, path, ctx) as number[];
  if (!v.every(isPlainObject)) {
    fail(ctx, path, 'a list must hold only numbers (a gradient) or only {filter, value} entries, not a mix');
  }
  const entries = v.map((e, i) => parseFilterEntry(e as Record<string, unknown>, join(path, i), ctx));
  // An entry that matches everything ends the list: later entries could never be chosen.
  const catchAll = entries.findIndex((e) => e.filter === undefined || e.filter === '*');
  if (catchAll >= 0 && catchAll < entries.length - 1) {
    fail(ctx, join(path, catchAll), 'an entry without filter matches every tensor, so it must be the last entry (later entries would never apply)');
  }
  return entries;
}

function parseFilterEntry(o: Record<string, unknown>, path: string, ctx: Ctx): FilteredValue {
  checkKeys(o, ['filter', 'value'], path, ctx, 'a filter entry');
  if (!('value' in o)) fail(ctx, path, 'a filter entry needs a `value`');
  const value = parseScalarOrGradient(o.value, join(path, 'value'), ctx);
  if (o.filter === undefined || o.filter === null) return { value };
  if (typeof o.filter !== 'string' || o.filter === '') {
    fail(ctx, join(path, 'filter'), `expected a non-empty tensor-name substring, got ${describe(o.filter)} (omit the filter for the default entry)`);
  }
  return { filter: o.filter, value };
}

function checkKeys(o: Record<string, unknown>, allowed: readonly string[], path: string, ctx: Ctx, what: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) {
      fail(ctx, join(path, k), `unknown key in ${what} (allowed: ${allowed.join(', ')})`);
    }
  }
}

/** Every number a coefficient can evaluate to lies within [min, max] of these (interpolation is convex). */
export function coefficientValues(c: Coefficient): number[] {
  if (typeof c === 'number') return [c];
  const out: number[] = [];
  for (const e of c) {
    if (typeof e === 'number') out.push(e);
    else if (typeof e.value === 'number') out.push(e.value);
    else out.push(...e.value);
  }
  return out;
}

type Range = { lo: number; hi: number; loOpen: boolean; hiOpen: boolean; text: string };
const RANGES: Partial<Record<ModelParamName | 't', Range>> = {
  density: { lo: 0, hi: 1, loOpen: true, hiOpen: false, text: '(0, 1]' },
  gamma: { lo: 0, hi: 1, loOpen: false, hiOpen: true, text: '[0, 1)' },
  t: { lo: 0, hi: 1, loOpen: false, hiOpen: false, text: '[0, 1]' },
};

function checkRange(c: Coefficient, name: ModelParamName | 't', path: string, ctx: Ctx): void {
  const r = RANGES[name];
  if (!r) return;
  for (const x of coefficientValues(c)) {
    const below = r.loOpen ? x <= r.lo : x < r.lo;
    const above = r.hiOpen ? x >= r.hi : x > r.hi;
    if (below || above) fail(ctx, path, `${name} must be in ${r.text}, got ${x}`);
  }
}

function methodsTaking(param: string): MethodName[] {
  return METHOD_NAMES.filter((m) => {
    const s = METHOD_SPECS[m];
    return (s.modelParams as readonly string[]).includes(param) || (s.globalParams as readonly string[]).includes(param);
  });
}

function unknownParam(method: MethodName, key: string, path: string, takes: readonly string[], ctx: Ctx): never {
  const users = methodsTaking(key);
  const where = users.length ? ` (it is used by ${users.join(', ')})` : '';
  const list = takes.length ? takes.join(', ') : 'no parameters';
  return fail(ctx, join(path, key), `${method} does not take \`${key}\`${where}; ${method} takes ${list} here`);
}

function parseModelParams(raw: unknown, method: MethodName, path: string, ctx: Ctx): ModelParameters {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw)) fail(ctx, path, `expected an object of per-model parameters, got ${describe(raw)}`);
  const spec = METHOD_SPECS[method];
  const out: ModelParameters = {};
  for (const key of Object.keys(raw)) {
    if (!(spec.modelParams as readonly string[]).includes(key)) {
      if ((spec.globalParams as readonly string[]).includes(key)) {
        fail(ctx, join(path, key), `\`${key}\` is a global parameter of ${method}: put it under the top-level \`parameters\``);
      }
      unknownParam(method, key, path, spec.modelParams, ctx);
    }
  }
  for (const name of ['weight', 'density', 'gamma'] as const) {
    if (raw[name] === undefined) continue;
    const c = parseCoeff(raw[name], join(path, name), ctx);
    checkRange(c, name, join(path, name), ctx);
    out[name] = c;
  }
  return out;
}

function parseGlobalParams(raw: unknown, method: MethodName, ctx: Ctx): GlobalParameters {
  const path = 'parameters';
  if (raw === undefined || raw === null) raw = {};
  if (!isPlainObject(raw)) fail(ctx, path, `expected an object, got ${describe(raw)}`);
  const spec = METHOD_SPECS[method];
  const allowed: readonly string[] = [...spec.modelParams, ...spec.globalParams];
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) unknownParam(method, key, path, allowed, ctx);
  }
  const out: GlobalParameters = parseModelParams(
    Object.fromEntries(spec.modelParams.filter((k) => raw[k] !== undefined).map((k) => [k, raw[k]])),
    method,
    path,
    ctx,
  );
  if (spec.globalParams.includes('lambda')) {
    out.lambda = raw.lambda === undefined ? spec.defaults.lambda : parseFiniteNumber(raw.lambda, join(path, 'lambda'), ctx);
  }
  if (spec.globalParams.includes('normalize')) {
    const v = raw.normalize ?? spec.defaults.normalize;
    if (typeof v !== 'boolean') fail(ctx, join(path, 'normalize'), `expected true or false, got ${describe(v)}`);
    out.normalize = v;
  }
  if (spec.globalParams.includes('t') && raw.t !== undefined) {
    const t = parseCoeff(raw.t, join(path, 't'), ctx);
    checkRange(t, 't', join(path, 't'), ctx);
    out.t = t;
  }
  if (spec.globalParams.includes('seed')) {
    const v = raw.seed ?? spec.defaults.seed;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      fail(ctx, join(path, 'seed'), `expected an integer in [0, 2^32 - 1], got ${describe(v)}`);
    }
    out.seed = v;
  }
  for (const name of spec.requiredGlobalParams) {
    if (out[name] === undefined) {
      fail(ctx, path, name === 't'
        ? `${method} needs \`t\` (0 gives the base, 1 the other model; a list is a gradient across layers)`
        : `${method} needs \`${name}\``);
    }
  }
  return out;
}

function parseModelRef(v: unknown, path: string, ctx: Ctx): string {
  if (typeof v !== 'string' || v.trim() === '') fail(ctx, path, `expected a checkpoint id or path, got ${describe(v)}`);
  return v;
}

/**
 * Checks a parsed, canonical recipe's cross-field rules. Separate from the field parsing so the
 * YAML importer gets the same rules; paths name recipe fields.
 */
function checkCrossFields(r: MergeRecipe, modelPaths: string[], ctx: Ctx): void {
  const spec = METHOD_SPECS[r.method];
  const n = r.models.length;
  const names = r.models.map((m) => m.model);
  if (n < spec.minModels || n > spec.maxModels) {
    const others = `${n} model${n === 1 ? '' : 's'} other than the base${n ? ` (${names.join(', ')})` : ''}`;
    if (r.method === 'slerp') {
      fail(ctx, 'models', `slerp interpolates between exactly two models, the base (t = 0) and one other (t = 1); got ${others}`);
    }
    if (r.method === 'model_stock') {
      fail(ctx, 'models', `model_stock needs at least two fine-tuned models besides the base (mergekit: base plus two or more); got ${others}`);
    }
    fail(ctx, 'models', `${r.method} needs at least ${spec.minModels} model${spec.minModels === 1 ? '' : 's'} other than the base; got none`);
  }
  for (const name of spec.requiredModelParams) {
    if (r.parameters[name] !== undefined) continue;
    r.models.forEach((m, i) => {
      if (m.parameters[name] === undefined) {
        fail(ctx, join(modelPaths[i] ?? `models[${i}]`, 'parameters'), `${r.method} needs a \`${name}\` for model '${m.model}' (or a global parameters.${name})`);
      }
    });
  }
  if (r.method === 'linear' && r.parameters.normalize) {
    // Linear divides by Σ w (mergekit does not guard a zero sum); catch it where it is knowable.
    const ws = r.models.map((m) => m.parameters.weight ?? r.parameters.weight);
    if (ws.every((w) => typeof w === 'number')) {
      const sum = (ws as number[]).reduce((a, b) => a + b, 0);
      if (Math.abs(sum) < 1e-8) fail(ctx, 'parameters.normalize', `linear with normalize: true divides by the sum of weights, which is ${sum}; change the weights or set normalize: false`);
    }
  }
  if (r.method === 'breadcrumbs' || r.method === 'breadcrumbs_ties') {
    r.models.forEach((m, i) => {
      const d = m.parameters.density ?? r.parameters.density ?? spec.defaults.density ?? 1;
      const g = m.parameters.gamma ?? r.parameters.gamma ?? spec.defaults.gamma ?? 0;
      const bad = breadcrumbsViolation(d, g);
      if (bad) {
        fail(ctx, join(modelPaths[i] ?? `models[${i}]`, 'parameters'), `breadcrumbs needs density + gamma ≤ 1 wherever density < 1 (gamma removes the largest entries, the rest of the drop the smallest), got density ${bad.density} and gamma ${bad.gamma} for model '${m.model}'`);
      }
    });
  }
}

/**
 * Finds a (density, gamma) pair with density < 1 and density + gamma > 1, where that can be
 * decided without tensor names: scalars and gradients with a shared anchor grid (a scalar is
 * broadcast). Filtered coefficients are checked per tensor by resolveTensorParams.
 * Between two anchors both are linear in depth, so the sum is too: checking the anchors of every
 * segment on which density is not identically 1 is exact (density = 1 skips sparsification).
 */
function breadcrumbsViolation(d: Coefficient, g: Coefficient): { density: number; gamma: number } | null {
  const anchors = (c: Coefficient): number[] | null =>
    typeof c === 'number' ? [c] : c.every((e) => typeof e === 'number') ? (c as number[]) : null;
  const da = anchors(d);
  const ga = anchors(g);
  if (!da || !ga) return null;
  if (da.length !== ga.length && da.length !== 1 && ga.length !== 1) return null;
  const n = Math.max(da.length, ga.length);
  const at = (a: number[], i: number): number => (a.length === 1 ? a[0]! : a[i]!);
  const bad = (i: number): { density: number; gamma: number } | null =>
    at(da, i) + at(ga, i) > 1 + 1e-12 ? { density: at(da, i), gamma: at(ga, i) } : null;
  if (n === 1) return at(da, 0) < 1 ? bad(0) : null;
  for (let i = 0; i + 1 < n; i++) {
    if (at(da, i) >= 1 && at(da, i + 1) >= 1) continue;
    const hit = bad(i) ?? bad(i + 1);
    if (hit) return hit;
  }
  return null;
}

/**
 * Parses and checks a recipe object (from JSON.parse). Returns the canonical recipe: keys in a
 * fixed order, a listed base dropped where the method ignores it, and the method's global
 * defaults (lambda, normalize, seed) written in so the recipe reads explicitly.
 * Throws InputError naming `file` and the field path, e.g. `models[1].parameters.weight`.
 */
export function parseRecipe(json: unknown, file?: string): MergeRecipe {
  return parseRecipeWith(json, { file, names: JSON_NAMES });
}

/** @internal The YAML importer's entry: same rules, mergekit's field names in messages. */
export function parseRecipeWith(json: unknown, ctx: { file?: string; names: FieldNames }): MergeRecipe {
  const { names } = ctx;
  if (!isPlainObject(json)) fail(ctx, '', `a merge recipe must be an object, got ${describe(json)}`);
  const top = ['version', names.method, names.base, 'models', 'parameters', 'dtype'];
  if (names === JSON_NAMES) {
    checkKeys(json, top, '', ctx, 'a merge recipe');
    if (json.version !== 1) fail(ctx, 'version', `unsupported recipe version ${describe(json.version)} (this studio reads version 1)`);
  }
  const methodRaw = json[names.method];
  if (methodRaw === undefined) fail(ctx, names.method, `missing; one of ${METHOD_NAMES.join(', ')}`);
  if (!isMethodName(methodRaw)) {
    const shown = typeof methodRaw === 'string' ? `'${methodRaw}'` : describe(methodRaw);
    fail(ctx, names.method, `unknown merge method ${shown}; the studio supports ${METHOD_NAMES.join(', ')}`);
  }
  const method = methodRaw;
  const spec = METHOD_SPECS[method];

  if (json[names.base] === undefined || json[names.base] === null) {
    fail(ctx, names.base, method === 'slerp'
      ? 'missing: slerp needs a base (t = 0 gives the base)'
      : `missing: ${method} needs the base checkpoint the models were fine-tuned from`);
  }
  const base = parseModelRef(json[names.base], names.base, ctx);

  const modelsRaw = json.models;
  if (!Array.isArray(modelsRaw)) fail(ctx, 'models', `expected a list of {${names.model}, parameters}, got ${describe(modelsRaw)}`);
  const models: RecipeModel[] = [];
  const modelPaths: string[] = [];
  const seen = new Map<string, number>();
  modelsRaw.forEach((entry, i) => {
    const path = `models[${i}]`;
    if (!isPlainObject(entry)) fail(ctx, path, `expected {${names.model}, parameters}, got ${describe(entry)}`);
    checkKeys(entry, [names.model, 'parameters'], path, ctx, 'a model entry');
    const model = parseModelRef(entry[names.model], join(path, names.model), ctx);
    const prev = seen.get(model);
    if (prev !== undefined) fail(ctx, join(path, names.model), `'${model}' is already models[${prev}]; list each model once`);
    seen.set(model, i);
    const parameters = parseModelParams(entry.parameters, method, join(path, 'parameters'), ctx);
    // Base listed among the models: an input for linear, otherwise ignored as mergekit does.
    if (model === base && !spec.baseIsInput) return;
    models.push({ model, parameters });
    modelPaths.push(path);
  });

  const parameters = parseGlobalParams(json.parameters, method, ctx);

  let dtype: RecipeDtype | undefined;
  if (json.dtype !== undefined && json.dtype !== null) {
    if (typeof json.dtype !== 'string' || !(DTYPES as readonly string[]).includes(json.dtype)) {
      fail(ctx, 'dtype', `expected one of ${DTYPES.join(', ')}, got ${describe(json.dtype)}`);
    }
    dtype = json.dtype as RecipeDtype;
  }

  const recipe: MergeRecipe = { version: 1, method, base, models, parameters };
  if (dtype) recipe.dtype = dtype;
  checkCrossFields(recipe, modelPaths, ctx);
  return recipe;
}

// ---------------------------------------------------------------------------------------------
// Output

function canonicalCoefficient(c: Coefficient): Coefficient {
  if (typeof c === 'number') return c;
  return c.map((e) => {
    if (typeof e === 'number') return e;
    const v = typeof e.value === 'number' ? e.value : [...e.value];
    return e.filter === undefined ? { value: v } : { filter: e.filter, value: v };
  }) as Coefficient;
}

function canonicalParams<T extends GlobalParameters>(p: T): GlobalParameters {
  const out: GlobalParameters = {};
  for (const k of ['weight', 'density', 'gamma'] as const) {
    const v = p[k];
    if (v !== undefined) out[k] = canonicalCoefficient(v);
  }
  if (p.lambda !== undefined) out.lambda = p.lambda;
  if (p.normalize !== undefined) out.normalize = p.normalize;
  if (p.t !== undefined) out.t = canonicalCoefficient(p.t);
  if (p.seed !== undefined) out.seed = p.seed;
  return out;
}

/** A deep copy of the recipe with keys in the canonical order (no validation). */
export function canonicalRecipe(r: MergeRecipe): MergeRecipe {
  const out: MergeRecipe = {
    version: 1,
    method: r.method,
    base: r.base,
    models: r.models.map((m) => ({ model: m.model, parameters: canonicalParams(m.parameters) as ModelParameters })),
    parameters: canonicalParams(r.parameters),
  };
  if (r.dtype !== undefined) out.dtype = r.dtype;
  return out;
}

/**
 * Stable pretty JSON: canonical key order, two-space indent, lists of numbers on one line,
 * trailing newline. Equal recipes give byte-identical text.
 */
export function recipeToJson(recipe: MergeRecipe): string {
  const text = JSON.stringify(canonicalRecipe(recipe), null, 2);
  const num = String.raw`-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?`;
  const numList = new RegExp(String.raw`\[\s*(${num}(?:,\s*${num})*)\s*\]`, 'g');
  return `${text.replace(numList, (_, body: string) => `[${body.split(/,\s*/).join(', ')}]`)}\n`;
}
