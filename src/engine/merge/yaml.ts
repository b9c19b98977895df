/**
 * mergekit YAML import/export for merge recipes (arcee-ai/mergekit `config.py` MergeConfiguration,
 * README "Configuration"). Only the `models:` form is supported: no `slices:`/`modules:`
 * (layer-range assembly), no tokenizer merging (`tokenizer_source: base` only), no LoRA references.
 *
 * Mapping (recipe <-> mergekit):
 * - method <-> merge_method; base <-> base_model; models[i] <-> models[i] {model, parameters};
 *   parameters <-> parameters (weight/density/gamma fallbacks, lambda, normalize, t, seed).
 * - dtype: the studio merges in float32 and writes `recipe.dtype`, so a recipe with a dtype is
 *   exported as `dtype: float32` (mergekit's compute dtype) + `out_dtype: <dtype>`; on import the
 *   output dtype is `out_dtype ?? dtype`. A recipe without dtype exports neither (mergekit then
 *   keeps each tensor's stored dtype, like the studio keeps the base's).
 * - slerp: mergekit interpolates base_model (t = 0) and the one other model (t = 1); the export
 *   lists both under `models:` as mergekit's examples do.
 * - linear: mergekit's linear has no base; the studio's recipe always names one. If the base is
 *   not an input of the average, the export lists it with `weight: 0` (same result: it adds 0 to
 *   Σ w θ and to Σ w), and the import drops such an entry again. A linear config without
 *   base_model imports with base = the first model.
 * - seed (DARE) is written to `parameters`, which mergekit ignores (it draws its own masks).
 * - Imported `int8_mask` is dropped (storage only), and so is `rescale` when it is the method's
 *   default; any other mergekit parameter (epsilon, rescale: false, ...) is refused by name.
 * Both directions go through parseRecipe's checks, so errors name the field the same way.
 * YAML is read and written as 1.1, like PyYAML in mergekit (`normalize: yes` is true there);
 * one difference remains: this parser also reads bare `y`/`n` as booleans, PyYAML does not.
 */
import { Document, isScalar, parseDocument, visit } from 'yaml';
import { InputError } from '../errors.ts';
import { FLOAT_DTYPE_NAMES } from '../io/dtypes.ts';
import { canonicalRecipe, isPlainObject, parseRecipeWith, type FieldNames, type MergeRecipe } from './recipe.ts';
import { getMethod, isMethodName, methodNames, WEIGHT } from './registry.ts';

const YAML_NAMES: FieldNames = { method: 'merge_method', base: 'base_model', model: 'model' };
const SUPPORTED_KEYS = ['merge_method', 'base_model', 'models', 'parameters', 'dtype', 'out_dtype', 'tokenizer_source', 'tokenizer'];

/** mergekit keys the studio deliberately does not take, with the reason shown to the user. */
const REJECTED_KEYS: Record<string, string> = {
  slices: 'only `models:` configs are supported; `slices:` (layer ranges / frankenmerges) is not: list whole models under `models:`',
  modules: 'only `models:` configs are supported; `modules:` (per-module slices) is not',
  chat_template: 'chat templates are not part of a studio merge recipe',
};

/** mergekit methods that exist but the studio does not implement (clearer than "unknown"). */
const MERGEKIT_ONLY_METHODS = [
  'passthrough', 'della', 'della_linear', 'nuslerp', 'multislerp', 'karcher',
  'arcee_fusion', 'sce', 'nearswap', 'ram', 'task_adapter',
];

function fail(file: string | undefined, path: string, message: string): never {
  throw new InputError(path ? `${path}: ${message}` : message, { file });
}

function dtypeName(v: unknown, key: string, file: string | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  const name = typeof v === 'string' && v.startsWith('torch.') ? v.slice('torch.'.length) : v;
  const known = FLOAT_DTYPE_NAMES.find((d) => d === name);
  if (!known) fail(file, key, `expected one of ${FLOAT_DTYPE_NAMES.join(', ')}, got ${JSON.stringify(v)}`);
  return known;
}

/**
 * mergekit flags that do not change the result here: `int8_mask` (mask storage only) and the
 * method's neutral flags at their neutral value (MergeMethod.mergekitNeutral: DARE rescales, the
 * others do not). Dropped so common configs import; any other value is refused because the
 * studio cannot honour it.
 */
function withoutNeutralFlags(params: unknown, method: unknown, file: string | undefined): unknown {
  if (!isPlainObject(params)) return params;
  const out = { ...params };
  if ('int8_mask' in out) {
    if (typeof out.int8_mask !== 'boolean') fail(file, 'parameters.int8_mask', 'expected true or false');
    delete out.int8_mask;
  }
  const neutral = isMethodName(method) ? getMethod(method).mergekitNeutral ?? {} : {};
  for (const [key, value] of Object.entries(neutral)) {
    if (!(key in out)) continue;
    if (out[key] !== value) fail(file, `parameters.${key}`, `only mergekit's default for ${String(method)} (${value}) is supported`);
    delete out[key];
  }
  return out;
}

/**
 * mergekit's `tokenizer_source` (or `tokenizer: {source}`): `base` keeps the base model's
 * tokenizer, which is what every studio merge does; `union` and a model's tokenizer would change
 * the vocabulary, which the studio does not do.
 */
function checkTokenizerSource(js: Record<string, unknown>, file: string | undefined): void {
  const entries: [string, unknown][] = [];
  if ('tokenizer_source' in js) entries.push(['tokenizer_source', js.tokenizer_source]);
  if ('tokenizer' in js) {
    const t = js.tokenizer;
    if (!isPlainObject(t) || Object.keys(t).some((k) => k !== 'source')) {
      fail(file, 'tokenizer', 'only `tokenizer: {source: base}` is supported (the merged model keeps the base tokenizer; no token embeddings are added or merged)');
    }
    entries.push(['tokenizer.source', t.source]);
  }
  for (const [key, value] of entries) {
    if (value === 'base' || value === undefined || value === null) continue;
    fail(file, key, `${JSON.stringify(value)} is not supported: only \`base\` (the merged model keeps the base tokenizer; a union or another model's vocabulary would need new embeddings)`);
  }
}

/**
 * Parses a mergekit YAML config (the `models:` form) into a canonical recipe. Throws InputError
 * naming `file` and the YAML field path (`models[1].parameters.density`, `merge_method`, ...).
 */
export function parseMergekitYaml(text: string, file?: string): MergeRecipe {
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: true });
  const first = doc.errors[0];
  if (first) fail(file, '', `not valid YAML: ${first.message}`);
  const js: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (js === null || js === undefined) fail(file, '', 'empty config; expected merge_method, base_model and models');
  if (!isPlainObject(js)) fail(file, '', 'a mergekit config must be a mapping of merge_method, base_model, models, parameters, dtype');

  checkTokenizerSource(js, file);
  for (const key of Object.keys(js)) {
    const why = REJECTED_KEYS[key];
    if (why) fail(file, key, why);
    if (!SUPPORTED_KEYS.includes(key)) fail(file, key, `unsupported key (supported: ${SUPPORTED_KEYS.join(', ')})`);
  }
  const method = js.merge_method;
  if (typeof method === 'string' && MERGEKIT_ONLY_METHODS.includes(method)) {
    fail(file, 'merge_method', `mergekit's '${method}' is not supported by the studio; it supports ${methodNames().join(', ')}`);
  }
  if (!Array.isArray(js.models)) {
    fail(file, 'models', js.models === undefined ? 'missing: list the models to merge under `models:`' : 'expected a list of {model, parameters}');
  }
  js.models.forEach((m, i) => {
    if (isPlainObject(m) && typeof m.model === 'string' && m.model.includes('+')) {
      fail(file, `models[${i}].model`, `'${m.model}' looks like a mergekit LoRA reference (model+lora), which is not supported; merge the adapter first`);
    }
    if (isPlainObject(m) && isPlainObject(m.model)) {
      fail(file, `models[${i}].model`, 'expected a checkpoint id or path (mergekit model objects with lora/override are not supported)');
    }
  });

  let base = js.base_model;
  const explicitBase = base !== undefined && base !== null;
  const baseIsInput = isMethodName(method) && getMethod(method).capabilities.baseIsInput;
  if (!explicitBase && baseIsInput) {
    const m0: unknown = js.models[0];
    if (isPlainObject(m0)) base = m0.model;
  }
  const dtype = dtypeName(js.out_dtype, 'out_dtype', file) ?? dtypeName(js.dtype, 'dtype', file);
  const raw: Record<string, unknown> = {
    merge_method: method,
    base_model: base,
    models: js.models,
    parameters: withoutNeutralFlags(js.parameters, method, file),
    dtype,
  };
  const recipe = parseRecipeWith(raw, { file, names: YAML_NAMES });

  if (baseIsInput && explicitBase) {
    // Undo the export convention: a base with weight 0 and nothing else only names the base.
    const i = recipe.models.findIndex((m) => m.model === recipe.base);
    const entry = recipe.models[i];
    if (entry && entry.parameters.weight === 0 && Object.keys(entry.parameters).length === 1 && recipe.models.length > 1) {
      recipe.models.splice(i, 1);
    }
  }
  return recipe;
}

/**
 * A mergekit config that reproduces the recipe's merge (`mergekit-yaml config.yml out/`).
 * Global defaults (normalize, lambda) are written out explicitly so the file does not depend on
 * mergekit's per-method defaults. See the file comment for dtype, slerp, linear and seed.
 */
export function recipeToMergekitYaml(recipe: MergeRecipe): string {
  const r = canonicalRecipe(recipe);
  const method = getMethod(r.method);
  const entry = (model: string, parameters: object): Record<string, unknown> =>
    Object.keys(parameters).length ? { model, parameters } : { model };

  let models = r.models.map((m) => entry(m.model, m.parameters));
  if (method.mergekitListsBase) models = [{ model: r.base }, ...models];
  if (method.capabilities.baseIsInput && !r.models.some((m) => m.model === r.base)) {
    models = [...models, { model: r.base, parameters: { [WEIGHT]: 0 } }];
  }

  const parameters: Record<string, unknown> = { ...r.parameters };
  for (const spec of method.params) {
    if (spec.scope === 'global' && spec.default !== undefined) parameters[spec.name] = r.parameters[spec.name] ?? spec.default;
  }

  const config: Record<string, unknown> = { merge_method: r.method, base_model: r.base, models };
  if (Object.keys(parameters).length) config.parameters = parameters;
  if (r.dtype) {
    config.dtype = 'float32';
    config.out_dtype = r.dtype;
  }

  const doc = new Document(config, { version: '1.1' });
  doc.commentBefore = ' mergekit config exported by DEM Studio; run: mergekit-yaml <this file> <output dir>';
  // Gradients read best inline: `t: [0, 0.5, 1]` (mergekit's own dumper does the same).
  visit(doc, {
    Seq(_, node) {
      if (node.items.length && node.items.every((it) => isScalar(it) && typeof it.value === 'number')) node.flow = true;
    },
  });
  const seed = doc.getIn(['parameters', 'seed'], true);
  if (isScalar(seed)) seed.comment = ' studio DARE seed; mergekit ignores it and draws its own masks';
  const dt = doc.get('dtype', true);
  if (isScalar(dt)) dt.comment = ' the studio merges in float32';
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}
