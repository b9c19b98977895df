/**
 * mergekit YAML import/export for merge recipes (arcee-ai/mergekit `config.py` MergeConfiguration,
 * README "Configuration"). Only the `models:` form is supported: no `slices:`/`modules:`
 * (layer-range assembly), no tokenizer merging (`tokenizer_source: base` only). A LoRA reference `MODEL+ADAPTER` (the adapter over
 * MODEL) is a model id like any other, kept whole both ways; the host opens it (the CLI:
 * cli/mergeArgs.ts modelReference).
 *
 * Mapping (recipe <-> mergekit):
 * - method <-> merge_method; base <-> base_model; models[i] <-> models[i] {model, parameters};
 *   parameters <-> parameters (weight/density/gamma fallbacks, lambda, normalize, t, seed).
 * - dtype: the studio forms Δ and merges in float32, so every export says `dtype: float32`
 *   (mergekit's compute dtype; without it mergekit computes in the checkpoint's dtype, e.g.
 *   bfloat16, and its merge differs from ours) + `out_dtype`: the recipe's dtype, else the base's
 *   (the caller says which). On import the output dtype is `out_dtype ?? dtype`.
 * - slerp: mergekit interpolates base_model (t = 0) and the one other model (t = 1); the export
 *   lists both under `models:` as mergekit's examples do.
 * - linear: mergekit's linear has no base; the studio's recipe always names one. If the base is
 *   not an input of the average, the export lists it with `weight: 0` (same result: it adds 0 to
 *   Σ w θ and to Σ w), and the import drops such an entry again. A linear config without
 *   base_model imports with base = the first model.
 * - seed (DARE) is written to `parameters`, which mergekit ignores (it draws its own masks).
 * - A parameter mergekit spells differently (ParamSpec.mergekit: `rescale`, a boolean there) is
 *   written and read in mergekit's spelling, with mergekit's meaning of an absent key.
 * - A method's note on where mergekit differs (MergeMethod.mergekitNote: breadcrumbs with
 *   int(γ·n) = 0) is written as a comment.
 * - Imported `int8_mask` is dropped (storage only), and so is `rescale` where the method drops
 *   nothing (task_arithmetic); any other mergekit parameter (epsilon, ...) is refused by name.
 * Both directions go through parseRecipe's checks, so errors name the field the same way.
 * YAML is read and written as 1.1, like PyYAML in mergekit (`normalize: yes` is true there);
 * one difference remains: this parser also reads bare `y`/`n` as booleans, PyYAML does not.
 */
import { Document, isAlias, isCollection, isScalar, parseDocument, visit } from 'yaml';
import { InputError } from '../errors.ts';
import { FLOAT_DTYPE_NAMES, type FloatDTypeName } from '../io/dtypes.ts';
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
 * mergekit's `parameters` in the studio's terms: `int8_mask` (mask storage only) and the
 * method's neutral flags at their neutral value (MergeMethod.mergekitNeutral) are dropped; the
 * parameters mergekit spells differently (ParamSpec.mergekit) are translated, and given
 * mergekit's default when absent. Any other value is refused because the studio cannot honour it.
 */
function fromMergekitParams(params: unknown, method: unknown, file: string | undefined): unknown {
  if (params !== undefined && params !== null && !isPlainObject(params)) return params;
  const out: Record<string, unknown> = { ...(params ?? {}) };
  for (const spec of isMethodName(method) ? getMethod(method).params : []) {
    if (!spec.mergekit || spec.scope !== 'global') continue;
    if (!(spec.name in out)) {
      out[spec.name] = spec.mergekit.absent;
      continue;
    }
    const ours = spec.mergekit.read(out[spec.name]);
    if (ours === undefined) fail(file, `parameters.${spec.name}`, `expected true or false (mergekit's ${spec.name}), got ${JSON.stringify(out[spec.name])}`);
    out[spec.name] = ours;
  }
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

/** Largest config read (a mergekit config is a few kB even with a hundred models and filters). */
export const MAX_YAML_CHARS = 1 << 20;
/**
 * Deepest nesting read: the YAML library recurses per level, and at a few thousand levels its
 * stack overflow can abort the whole process (in V8's regexp compiler) instead of throwing.
 * A config needs about 6.
 */
const MAX_YAML_DEPTH = 64;
/** Aliases expanded at most (the library's guard against "billion laughs" alias bombs). */
const MAX_ALIASES = 1000;

/**
 * The nesting `text` can reach, over-estimated without parsing: open flow brackets outside quotes
 * and comments, plus per line the indentation and the compact `- ` / `? ` / `: ` indicators before
 * the content. Each level of YAML nesting needs one of these.
 */
function nestingBound(text: string): number {
  let flow = 0;
  let worst = 0;
  for (const line of text.split('\n')) {
    const indent = /^[ \t]*/.exec(line)![0].length;
    const indicators = /^(?:[-?:](?:[ \t]+|$))*/.exec(line.slice(indent))![0].replace(/[ \t]/g, '').length;
    worst = Math.max(worst, flow + indent + indicators);
    let quote = '';
    for (let i = indent; i < line.length; i++) {
      const c = line[i]!;
      if (quote) {
        if (c === quote) quote = '';
        else if (c === '\\' && quote === '"') i++;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) break;
      else if (c === '[' || c === '{') worst = Math.max(worst, ++flow + indent + indicators);
      else if ((c === ']' || c === '}') && flow > 0) flow--;
    }
  }
  return worst;
}

/** The path to a collection that contains itself through an alias (`a: &x [*x]`), or undefined. */
function cyclePath(value: unknown, path = '', open = new Set<unknown>(), done = new Set<unknown>()): string | undefined {
  if (typeof value !== 'object' || value === null || done.has(value)) return undefined;
  if (open.has(value)) return path || '(top level)';
  open.add(value);
  const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [`${path}[${i}]`, v]) : Object.entries(value).map(([k, v]) => [path ? `${path}.${k}` : k, v]);
  for (const [p, v] of entries) {
    const found = cyclePath(v, p, open, done);
    if (found) return found;
  }
  open.delete(value);
  // Shared (aliased) collections are explored once: a second visit cannot find a new cycle.
  done.add(value);
  return undefined;
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
  if (text.length > MAX_YAML_CHARS) fail(file, '', `${text.length} characters is more than a mergekit config may have (${MAX_YAML_CHARS})`);
  const depth = nestingBound(text);
  if (depth > MAX_YAML_DEPTH) fail(file, '', `nested up to ${depth} levels deep, more than a mergekit config may be (${MAX_YAML_DEPTH})`);
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: true });
  const first = doc.errors[0];
  // The library's message continues with a snippet of the offending lines: the first line says it.
  if (first) fail(file, '', `not valid YAML: ${first.message.split('\n')[0]!.replace(/:$/, '')}`);
  // A list or mapping as a mapping key has no JSON form (the library would stringify it and warn on stderr).
  let complexKey = false;
  visit(doc, {
    Pair(_, pair) {
      const key = isAlias(pair.key) ? pair.key.resolve(doc) : pair.key;
      if (isCollection(key)) {
        complexKey = true;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  if (complexKey) fail(file, '', 'a mapping key is itself a list or mapping, which a mergekit config never has');
  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (cause) {
    // Undefined aliases (ReferenceError) and alias bombs (more than MAX_ALIASES expansions).
    const message = cause instanceof Error ? cause.message : String(cause);
    fail(file, '', /Excessive alias count/.test(message) ? `aliases expand to more than ${MAX_ALIASES} nodes (a YAML alias bomb?)` : `not valid YAML: ${message.split('\n')[0]}`);
  }
  const cycle = cyclePath(js);
  if (cycle) fail(file, cycle, 'an alias refers to a collection that contains it (the config would be infinite)');
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
    parameters: fromMergekitParams(js.parameters, method, file),
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
 * Global defaults (normalize, lambda, rescale) are written out explicitly so the file does not
 * depend on mergekit's per-method defaults. `baseDtype`: the base checkpoint's dtype, the output
 * dtype of a recipe without one. See the file comment for dtype, slerp, linear and seed.
 */
export function recipeToMergekitYaml(recipe: MergeRecipe, baseDtype: FloatDTypeName): string {
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
  const notes: Record<string, string> = {};
  for (const spec of method.params) {
    if (spec.scope === 'global' && spec.default !== undefined) parameters[spec.name] = r.parameters[spec.name] ?? spec.default;
    if (spec.mergekit && typeof parameters[spec.name] === 'string') {
      const { value, note } = spec.mergekit.write(parameters[spec.name] as string);
      parameters[spec.name] = value;
      if (note) notes[spec.name] = note;
    }
  }

  const config: Record<string, unknown> = { merge_method: r.method, base_model: r.base, models };
  if (Object.keys(parameters).length) config.parameters = parameters;
  config.dtype = 'float32';
  config.out_dtype = r.dtype ?? baseDtype;

  const doc = new Document(config, { version: '1.1' });
  doc.commentBefore = ' mergekit config exported by DEM Studio; run: mergekit-yaml <this file> <output dir>' + (method.mergekitNote ? `\n ${method.mergekitNote}` : '');
  // Gradients read best inline: `t: [0, 0.5, 1]` (mergekit's own dumper does the same).
  visit(doc, {
    Seq(_, node) {
      if (node.items.length && node.items.every((it) => isScalar(it) && typeof it.value === 'number')) node.flow = true;
    },
  });
  const seed = doc.getIn(['parameters', 'seed'], true);
  if (isScalar(seed)) seed.comment = ' studio DARE seed; mergekit ignores it and draws its own masks';
  for (const [name, note] of Object.entries(notes)) {
    const node = doc.getIn(['parameters', name], true);
    if (isScalar(node)) node.comment = note;
  }
  const dt = doc.get('dtype', true);
  if (isScalar(dt)) dt.comment = ' the studio merges in float32';
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}
