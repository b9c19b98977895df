/**
 * The studio's merge recipe: which method, which base, which fine-tunes with which coefficients.
 * Parsed once at the boundary (JSON here, mergekit YAML in yaml.ts) with cross-field checks, so
 * the merge code downstream never sees an ill-formed recipe (after mergekit's `config.py`).
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
import { FLOAT_DTYPE_NAMES, type FloatDTypeName } from '../io/dtypes.ts';
import { valueProblem } from './methods/params.ts';
import type { MergeMethod, ParamSpec, RecipeCoefficient } from './methods/types.ts';
import { getMethod, isMethodName, methodNames, methodsTaking } from './registry.ts';

/** A method's name as recipes state it (one of registry.ts's METHODS). */
export type MethodName = string;

/** Recipes name output dtypes as torch does ('float32', 'float16', 'bfloat16'). */
export type RecipeDtype = FloatDTypeName;

/** One entry of a filtered coefficient; `filter` absent (or `*`) = matches every tensor. */
export interface FilteredValue {
  filter?: string;
  value: number | number[];
}
/** Scalar, gradient across layer depth, or first-match-wins list of tensor-name filters. */
export type Coefficient = number | number[] | FilteredValue[];

/** A model's own parameters, by the names its method declares with scope 'model' (weight, density …). */
export type ModelParameters = Record<string, Coefficient>;

/** Global parameters (lambda, normalize, t, seed …) and fallbacks for the model-scope ones. */
export type GlobalParameters = Record<string, Coefficient | boolean | string>;

export interface RecipeModel {
  /** Checkpoint id or path. */
  model: string;
  parameters: ModelParameters;
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

function unknownParam(method: string, key: string, path: string, takes: readonly string[], ctx: Ctx): never {
  const users = methodsTaking(key);
  const where = users.length ? ` (it is used by ${users.join(', ')})` : '';
  const list = takes.length ? takes.join(', ') : 'no parameters';
  return fail(ctx, join(path, key), `${method} does not take \`${key}\`${where}; ${method} takes ${list} here`);
}

/** One parameter's value as the recipe states it, checked against its spec. */
function parseParam(spec: ParamSpec, v: unknown, path: string, ctx: Ctx): Coefficient | boolean | string {
  const check = (x: unknown): void => {
    const problem = valueProblem(spec, x);
    if (problem) fail(ctx, path, `${problem}, got ${describe(x)}`);
  };
  if (spec.type !== 'number' || !spec.varies) {
    check(v);
    return v as number | boolean | string;
  }
  const c = parseCoeff(v, path, ctx);
  for (const x of coefficientValues(c)) check(x);
  return c;
}

const modelScope = (m: MergeMethod): ParamSpec[] => m.params.filter((p) => p.scope === 'model');

function parseModelParams(raw: unknown, method: MergeMethod, path: string, ctx: Ctx): ModelParameters {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw)) fail(ctx, path, `expected an object of per-model parameters, got ${describe(raw)}`);
  const specs = modelScope(method);
  for (const key of Object.keys(raw)) {
    if (specs.some((p) => p.name === key)) continue;
    if (method.params.some((p) => p.name === key)) {
      fail(ctx, join(path, key), `\`${key}\` is a global parameter of ${method.name}: put it under the top-level \`parameters\``);
    }
    unknownParam(method.name, key, path, specs.map((p) => p.name), ctx);
  }
  const out: ModelParameters = {};
  for (const spec of specs) {
    if (raw[spec.name] !== undefined) out[spec.name] = parseParam(spec, raw[spec.name], join(path, spec.name), ctx) as Coefficient;
  }
  return out;
}

function parseGlobalParams(raw: unknown, method: MergeMethod, ctx: Ctx): GlobalParameters {
  const path = 'parameters';
  if (raw === undefined || raw === null) raw = {};
  if (!isPlainObject(raw)) fail(ctx, path, `expected an object, got ${describe(raw)}`);
  const allowed = method.params.map((p) => p.name);
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) unknownParam(method.name, key, path, allowed, ctx);
  }
  const out: GlobalParameters = {};
  for (const spec of method.params) {
    // Global defaults are written in so the recipe reads explicitly; model-scope ones are not.
    const v = raw[spec.name] ?? (spec.scope === 'global' ? spec.default : undefined);
    if (v !== undefined) out[spec.name] = parseParam(spec, v, join(path, spec.name), ctx);
    else if (spec.scope === 'global' && spec.required) {
      fail(ctx, path, `${method.name} needs \`${spec.name}\` (${spec.description})`);
    }
  }
  return out;
}

function parseModelRef(v: unknown, path: string, ctx: Ctx): string {
  if (typeof v !== 'string' || v.trim() === '') fail(ctx, path, `expected a checkpoint id or path, got ${describe(v)}`);
  return v;
}

/**
 * Checks a parsed, canonical recipe's cross-field rules (counts, required per-model parameters,
 * the method's own checkRecipe). Separate from the field parsing so the YAML importer gets the
 * same rules; paths name recipe fields.
 */
function checkCrossFields(r: MergeRecipe, method: MergeMethod, modelPaths: string[], ctx: Ctx): void {
  const n = r.models.length;
  const names = r.models.map((m) => m.model);
  const modelPath = (i: number): string => join(modelPaths[i] ?? `models[${i}]`, 'parameters');
  if (n < method.minModels || n > method.maxModels) {
    const others = `${n} model${n === 1 ? '' : 's'} other than the base${n ? ` (${names.join(', ')})` : ''}`;
    if (method.modelsRule) fail(ctx, 'models', `${method.modelsRule}; got ${others}`);
    if (n < method.minModels) fail(ctx, 'models', `${method.name} needs at least ${method.minModels} model${method.minModels === 1 ? '' : 's'} other than the base; got ${n ? others : 'none'}`);
    fail(ctx, 'models', `${method.name} takes at most ${method.maxModels} model${method.maxModels === 1 ? '' : 's'} other than the base; got ${others}`);
  }
  for (const spec of modelScope(method)) {
    if (!spec.required || r.parameters[spec.name] !== undefined) continue;
    r.models.forEach((m, i) => {
      if (m.parameters[spec.name] === undefined) {
        fail(ctx, modelPath(i), `${method.name} needs a \`${spec.name}\` for model '${m.model}' (or a global parameters.${spec.name})`);
      }
    });
  }
  const problem = method.checkRecipe?.({
    models: names,
    coefficient: (i, param) => (r.models[i]?.parameters[param] ?? r.parameters[param]) as RecipeCoefficient | undefined,
    value: (param) => r.parameters[param] as RecipeCoefficient | boolean | string | undefined,
  });
  if (problem) fail(ctx, problem.model !== undefined ? modelPath(problem.model) : join('parameters', problem.param ?? ''), problem.message);
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
  if (methodRaw === undefined) fail(ctx, names.method, `missing; one of ${methodNames().join(', ')}`);
  if (!isMethodName(methodRaw)) {
    const shown = typeof methodRaw === 'string' ? `'${methodRaw}'` : describe(methodRaw);
    fail(ctx, names.method, `unknown merge method ${shown}; the studio supports ${methodNames().join(', ')}`);
  }
  const method = getMethod(methodRaw);

  if (json[names.base] === undefined || json[names.base] === null) {
    fail(ctx, names.base, `missing: ${method.baseRule ?? `${method.name} needs the base checkpoint the models were fine-tuned from`}`);
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
    if (model === base && !method.capabilities.baseIsInput) return;
    models.push({ model, parameters });
    modelPaths.push(path);
  });

  const parameters = parseGlobalParams(json.parameters, method, ctx);

  let dtype: RecipeDtype | undefined;
  if (json.dtype !== undefined && json.dtype !== null) {
    const name = FLOAT_DTYPE_NAMES.find((d) => d === json.dtype);
    if (!name) fail(ctx, 'dtype', `expected one of ${FLOAT_DTYPE_NAMES.join(', ')}, got ${describe(json.dtype)}`);
    dtype = name;
  }

  const recipe: MergeRecipe = { version: 1, method: method.name, base, models, parameters };
  if (dtype) recipe.dtype = dtype;
  checkCrossFields(recipe, method, modelPaths, ctx);
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

/** Parameters in the method's declared order (unknown names dropped); as given for an unknown method. */
function canonicalParams<T extends GlobalParameters>(p: T, method: MergeMethod | undefined): T {
  const out: GlobalParameters = {};
  const keys = method ? method.params.map((s) => s.name) : Object.keys(p);
  for (const k of keys) {
    const v = p[k];
    if (v !== undefined) out[k] = typeof v === 'boolean' || typeof v === 'string' ? v : canonicalCoefficient(v);
  }
  return out as T;
}

/** A deep copy of the recipe with keys in the canonical order (no validation). */
export function canonicalRecipe(r: MergeRecipe): MergeRecipe {
  const method = isMethodName(r.method) ? getMethod(r.method) : undefined;
  const out: MergeRecipe = {
    version: 1,
    method: r.method,
    base: r.base,
    models: r.models.map((m) => ({ model: m.model, parameters: canonicalParams(m.parameters, method) })),
    parameters: canonicalParams(r.parameters, method),
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
