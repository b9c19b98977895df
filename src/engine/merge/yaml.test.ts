import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { InputError } from '../errors.ts';
import { resolveTensorParams } from './coefficients.ts';
import { canonicalRecipe, parseRecipe, type MergeRecipe, type MethodName } from './recipe.ts';
import { methodNames } from './registry.ts';
import { parseMergekitYaml, recipeToMergekitYaml } from './yaml.ts';

function errorOf(text: string, file = 'merge.yml'): InputError {
  try {
    parseMergekitYaml(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected parseMergekitYaml to throw');
}

const filtered = [{ filter: 'self_attn', value: [0.2, 0.9] }, { filter: 'mlp', value: 0.4 }, { value: 0.7 }];

/** One non-trivial recipe per method, exercising scalars, gradients and filters. */
const RECIPES: Record<MethodName, unknown> = {
  task_arithmetic: {
    version: 1, method: 'task_arithmetic', base: 'ckpt/base',
    models: [
      { model: 'ckpt/prose', parameters: { weight: 0.55 } },
      { model: 'ckpt/code', parameters: { weight: [0, 0.5, 1] } },
      { model: 'ckpt/email', parameters: { weight: -0.125 } },
    ],
    parameters: { lambda: 1.3 }, dtype: 'float32',
  },
  linear: {
    version: 1, method: 'linear', base: 'ckpt/base',
    models: [{ model: 'ckpt/a', parameters: { weight: 2 } }, { model: 'ckpt/b', parameters: { weight: filtered } }],
    parameters: {},
  },
  ties: {
    version: 1, method: 'ties', base: 'base',
    models: [
      { model: 'a', parameters: { weight: 1, density: [1, 0.7, 0.1] } },
      { model: 'b', parameters: { weight: [0, 0.3, 0.7, 1], density: 0.5 } },
    ],
    parameters: { normalize: false, lambda: 0.8, density: filtered },
    dtype: 'float16',
  },
  dare_linear: {
    version: 1, method: 'dare_linear', base: 'base',
    models: [{ model: 'a', parameters: { weight: 0.4, density: 0.53 } }, { model: 'b', parameters: { weight: 0.3 } }],
    parameters: { density: 0.6, seed: 1234, rescale: 'none' },
  },
  dare_ties: {
    version: 1, method: 'dare_ties', base: 'base',
    models: [{ model: 'a', parameters: { weight: 0.4, density: 0.53 } }, { model: 'b', parameters: { weight: 0.3, density: [0.2, 0.9] } }],
    parameters: { rescale: 'l1' }, dtype: 'bfloat16',
  },
  breadcrumbs: {
    version: 1, method: 'breadcrumbs', base: 'base',
    models: [{ model: 'a', parameters: { weight: 1, density: 0.9, gamma: 0.01 } }, { model: 'b', parameters: { weight: 0.5, density: 0.8 } }],
    parameters: { gamma: 0.05 },
  },
  breadcrumbs_ties: {
    version: 1, method: 'breadcrumbs_ties', base: 'base',
    models: [{ model: 'a', parameters: { weight: 0.7, density: 0.8, gamma: 0.05 } }, { model: 'b', parameters: { weight: 0.4, density: [0.9, 0.6] } }],
    parameters: { gamma: 0.02, lambda: 0.9 },
  },
  slerp: {
    version: 1, method: 'slerp', base: 'base',
    models: [{ model: 'other', parameters: {} }],
    parameters: { t: [{ filter: 'self_attn', value: [0, 0.5, 0.3, 0.7, 1] }, { filter: 'mlp', value: [1, 0.5, 0.7, 0.3, 0] }, { value: 0.5 }] },
    dtype: 'bfloat16',
  },
  model_stock: {
    version: 1, method: 'model_stock', base: 'base',
    models: [{ model: 'a', parameters: {} }, { model: 'b', parameters: {} }, { model: 'c', parameters: {} }],
    parameters: {},
  },
};

describe('recipe -> mergekit YAML -> recipe', () => {
  for (const method of methodNames()) {
    it(`is the identity for ${method} (a recipe without dtype comes back with the base's, written as out_dtype)`, () => {
      const recipe = parseRecipe(RECIPES[method]);
      const text = recipeToMergekitYaml(recipe, 'bfloat16');
      expect(parseMergekitYaml(text, `${method}.yml`)).toEqual({ ...recipe, dtype: recipe.dtype ?? 'bfloat16' });
      // Also idempotent as text.
      expect(recipeToMergekitYaml(parseMergekitYaml(text), 'bfloat16')).toBe(text);
    });
  }

  it('always writes dtype: float32 (mergekit computes in it, as the studio does) and out_dtype (the recipe\'s, else the base\'s)', () => {
    for (const method of methodNames()) {
      const recipe = parseRecipe(RECIPES[method]);
      for (const base of ['float32', 'float16', 'bfloat16'] as const) {
        const y = parse(recipeToMergekitYaml(recipe, base));
        expect(y.dtype, method).toBe('float32');
        expect(y.out_dtype, method).toBe(recipe.dtype ?? base);
      }
    }
  });

  it("writes DARE's rescale in mergekit's spelling: l1 → true, none → false; the studio's 1/density as true with a note, read back as mergekit means it", () => {
    const dare = (rescale?: string): MergeRecipe => parseRecipe({ ...(RECIPES.dare_linear as object), parameters: { density: 0.6, seed: 1234, ...(rescale ? { rescale } : {}) } });
    expect(parse(recipeToMergekitYaml(dare('l1'), 'float32')).parameters.rescale).toBe(true);
    expect(parse(recipeToMergekitYaml(dare('none'), 'float32')).parameters.rescale).toBe(false);
    const text = recipeToMergekitYaml(dare(), 'float32');
    expect(dare().parameters.rescale).toBe('density');
    expect(text).toContain("rescale: true # studio: kept Δ × 1/density; mergekit's rescale: true restores each Δ's L1 norm instead (equal in expectation)");
    expect(parseMergekitYaml(text).parameters.rescale).toBe('l1');
    // An absent key means mergekit's default: L1 for DARE, none for the others.
    const bare = (method: string): string => `merge_method: ${method}\nbase_model: b\nmodels:\n  - model: a\n    parameters: {weight: 1, density: 0.5}\n`;
    expect(parseMergekitYaml(bare('dare_linear')).parameters.rescale).toBe('l1');
    expect(parseMergekitYaml(bare('dare_ties')).parameters.rescale).toBe('l1');
    expect(parseMergekitYaml(bare('ties')).parameters.rescale).toBe('none');
    expect(parseMergekitYaml(`${bare('ties')}parameters: {rescale: true}\n`).parameters.rescale).toBe('l1');
    expect(parseMergekitYaml(`${bare('breadcrumbs')}parameters: {rescale: false}\n`).parameters.rescale).toBe('none');
  });

  it('says in the exported YAML where breadcrumbs keeps a band mergekit drops (int(gamma·n) = 0)', () => {
    const text = recipeToMergekitYaml(parseRecipe(RECIPES.breadcrumbs), 'float32');
    expect(text).toContain('# breadcrumbs: where int(gamma·n) = 0 (gamma 0, or 0.01 on tensors under 100 elements) DEM Studio drops no top elements; mergekit drops that whole Δ');
    expect(recipeToMergekitYaml(parseRecipe(RECIPES.ties), 'float32')).not.toContain('int(gamma');
  });

  it('keeps a linear base that is an input of the average', () => {
    const r = parseRecipe({
      version: 1, method: 'linear', base: 'b',
      models: [{ model: 'a', parameters: { weight: 1 } }, { model: 'b', parameters: { weight: 3 } }],
      parameters: { normalize: true },
    });
    const text = recipeToMergekitYaml(r, 'float32');
    expect(parse(text).models).toEqual([{ model: 'a', parameters: { weight: 1 } }, { model: 'b', parameters: { weight: 3 } }]);
    expect(parseMergekitYaml(text)).toEqual({ ...r, dtype: 'float32' });
  });

  it('quotes ids that YAML 1.1 (PyYAML) would read as other types', () => {
    const r = parseRecipe({
      version: 1, method: 'task_arithmetic', base: 'yes',
      models: [{ model: 'on', parameters: { weight: 1 } }, { model: '1e3', parameters: { weight: 2 } }, { model: 'null', parameters: { weight: 3 } }],
      parameters: {},
    });
    const text = recipeToMergekitYaml(r, 'float32');
    expect(text).toMatch(/base_model: "yes"/);
    expect(parseMergekitYaml(text)).toEqual({ ...r, dtype: 'float32' });
  });
});

describe('recipeToMergekitYaml', () => {
  it('writes a DEM recipe as task_arithmetic with normalize false and lambda', () => {
    const text = recipeToMergekitYaml(parseRecipe(RECIPES.task_arithmetic), 'bfloat16');
    expect(text).toBe(`# mergekit config exported by DEM Studio; run: mergekit-yaml <this file> <output dir>

merge_method: task_arithmetic
base_model: ckpt/base
models:
  - model: ckpt/prose
    parameters:
      weight: 0.55
  - model: ckpt/code
    parameters:
      weight: [0, 0.5, 1]
  - model: ckpt/email
    parameters:
      weight: -0.125
parameters:
  lambda: 1.3
  normalize: false
dtype: float32 # the studio merges in float32
out_dtype: float32
`);
  });

  it('writes slerp as base_model plus the other model with a global t', () => {
    const y = parse(recipeToMergekitYaml(parseRecipe(RECIPES.slerp), 'float32'));
    expect(y).toEqual({
      merge_method: 'slerp',
      base_model: 'base',
      models: [{ model: 'base' }, { model: 'other' }],
      parameters: { t: [{ filter: 'self_attn', value: [0, 0.5, 0.3, 0.7, 1] }, { filter: 'mlp', value: [1, 0.5, 0.7, 0.3, 0] }, { value: 0.5 }] },
      dtype: 'float32',
      out_dtype: 'bfloat16',
    });
  });

  it('lists a non-input linear base with weight 0, and writes the DARE seed with a note', () => {
    const lin = parse(recipeToMergekitYaml(parseRecipe(RECIPES.linear), 'float32'));
    expect(lin.models.at(-1)).toEqual({ model: 'ckpt/base', parameters: { weight: 0 } });
    expect(lin.parameters).toEqual({ normalize: true });
    const dare = recipeToMergekitYaml(parseRecipe(RECIPES.dare_linear), 'float32');
    expect(dare).toContain('seed: 1234 # studio DARE seed; mergekit ignores it and draws its own masks');
    expect(parse(dare).parameters).toEqual({ density: 0.6, lambda: 1, normalize: false, rescale: false, seed: 1234 });
  });

  it('fills method defaults into a hand-built recipe that omits them', () => {
    const bare: MergeRecipe = { version: 1, method: 'ties', base: 'b', models: [{ model: 'a', parameters: { weight: 1 } }], parameters: {} };
    expect(parse(recipeToMergekitYaml(bare, 'float32')).parameters).toEqual({ lambda: 1, normalize: true, rescale: false });
  });
});

describe('parseMergekitYaml on hand-written mergekit configs', () => {
  it('reads ties with per-model density/weight gradients and filters (mergekit README style)', () => {
    const r = parseMergekitYaml(`
models:
  - model: psmathur/orca_mini_v3_13b
    parameters:
      density: [1, 0.7, 0.1] # density gradient
      weight: 1.0
  - model: garage-bAInd/Platypus2-13B
    parameters:
      density: 0.5
      weight: [0, 0.3, 0.7, 1] # weight gradient
  - model: WizardLM/WizardMath-13B-V1.0
    parameters:
      density: 0.33
      weight:
        - filter: mlp
          value: 0.5
        - value: 0
merge_method: ties
base_model: TheBloke/Llama-2-13B-fp16
parameters:
  normalize: true
  int8_mask: true
dtype: float16
`, 'ties.yml');
    expect(r).toEqual({
      version: 1,
      method: 'ties',
      base: 'TheBloke/Llama-2-13B-fp16',
      models: [
        { model: 'psmathur/orca_mini_v3_13b', parameters: { weight: 1, density: [1, 0.7, 0.1] } },
        { model: 'garage-bAInd/Platypus2-13B', parameters: { weight: [0, 0.3, 0.7, 1], density: 0.5 } },
        { model: 'WizardLM/WizardMath-13B-V1.0', parameters: { weight: [{ filter: 'mlp', value: 0.5 }, { value: 0 }], density: 0.33 } },
      ],
      parameters: { lambda: 1, normalize: true, rescale: 'none' },
      dtype: 'float16',
    });
    // 40 layers, layer 13: t = 1/3. density gradient [1, 0.7, 0.1]: s = 2/3 -> 1 - 0.3 * 2/3 = 0.8;
    // weight gradient [0, .3, .7, 1]: s = 1 -> 0.3; filtered weight: mlp 0.5, else 0.
    const mlp = resolveTensorParams(r, 'model.layers.13.mlp.gate_proj.weight', 13, 40);
    expect((mlp.params.density as number[])[0]).toBeCloseTo(0.8, 14);
    expect(mlp.weights[1]).toBeCloseTo(0.3, 14);
    expect(mlp.weights[2]).toBe(0.5);
    expect(resolveTensorParams(r, 'model.layers.13.self_attn.q_proj.weight', 13, 40).weights[2]).toBe(0);
  });

  it('reads dare_ties with the base listed without parameters', () => {
    const r = parseMergekitYaml(`
models:
  - model: mistralai/Mistral-7B-v0.1
    # no parameters necessary for base model
  - model: samir-fama/SamirGPT-v1
    parameters:
      density: 0.53
      weight: 0.4
  - model: abacusai/Slerp-CM-mist-dpo
    parameters:
      density: 0.53
      weight: 0.3
merge_method: dare_ties
base_model: mistralai/Mistral-7B-v0.1
parameters:
  int8_mask: true
  rescale: true
dtype: bfloat16
`);
    expect(r).toEqual({
      version: 1,
      method: 'dare_ties',
      base: 'mistralai/Mistral-7B-v0.1',
      models: [
        { model: 'samir-fama/SamirGPT-v1', parameters: { weight: 0.4, density: 0.53 } },
        { model: 'abacusai/Slerp-CM-mist-dpo', parameters: { weight: 0.3, density: 0.53 } },
      ],
      parameters: { lambda: 1, normalize: false, rescale: 'l1', seed: 0 },
      dtype: 'bfloat16',
    });
  });

  it('reads slerp with t as a gradient, per-filter, and evaluates it per layer', () => {
    const r = parseMergekitYaml(`
models:
  - model: OpenPipe/mistral-ft-optimized-1218
  - model: mlabonne/NeuralHermes-2.5-Mistral-7B
merge_method: slerp
base_model: OpenPipe/mistral-ft-optimized-1218
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: torch.bfloat16
`);
    expect(r.method).toBe('slerp');
    expect(r.base).toBe('OpenPipe/mistral-ft-optimized-1218');
    expect(r.models).toEqual([{ model: 'mlabonne/NeuralHermes-2.5-Mistral-7B', parameters: {} }]);
    expect(r.dtype).toBe('bfloat16');
    // 32 layers: layer 8 -> t = 8/31, s = 32/31, frac = 1/31.
    const attn = resolveTensorParams(r, 'model.layers.8.self_attn.k_proj.weight', 8, 32);
    expect(attn.params.t).toBeCloseTo(0.5 * (30 / 31) + 0.3 * (1 / 31), 14);
    const mlp = resolveTensorParams(r, 'model.layers.8.mlp.up_proj.weight', 8, 32);
    expect(mlp.params.t).toBeCloseTo(0.5 * (30 / 31) + 0.7 * (1 / 31), 14);
    expect(resolveTensorParams(r, 'model.layers.31.self_attn.k_proj.weight', 31, 32).params.t).toBe(1);
    expect(resolveTensorParams(r, 'lm_head.weight', null, 32).params.t).toBe(0.5);
  });

  it('reads a plain slerp and a gradient slerp without filters', () => {
    const r = parseMergekitYaml(`
merge_method: slerp
base_model: ./base
models:
  - model: ./base
  - model: ./tuned
parameters:
  t: [0, 0.5, 0.3, 0.7, 1]
`);
    expect(r.parameters).toEqual({ t: [0, 0.5, 0.3, 0.7, 1] });
    expect(resolveTensorParams(r, 'h.3.attn.c_attn.weight', 3, 9).params.t).toBeCloseTo(0.4, 15);
  });

  it('reads task_arithmetic with lambda (a DEM merge)', () => {
    const r = parseMergekitYaml(`
merge_method: task_arithmetic
base_model: ./base
models:
  - model: ./ft-prose
    parameters:
      weight: 0.6
  - model: ./ft-code
    parameters:
      weight: -0.2
parameters:
  normalize: false
  lambda: 1.5
dtype: float32
`);
    expect(r).toEqual({
      version: 1,
      method: 'task_arithmetic',
      base: './base',
      models: [{ model: './ft-prose', parameters: { weight: 0.6 } }, { model: './ft-code', parameters: { weight: -0.2 } }],
      parameters: { lambda: 1.5, normalize: false },
      dtype: 'float32',
    });
  });

  it('reads a linear config without base_model (base = first model), and breadcrumbs', () => {
    const lin = parseMergekitYaml(`
models:
  - model: a
    parameters:
      weight: 1.0
  - model: b
    parameters:
      weight: 0.5
merge_method: linear
dtype: float16
`);
    expect(lin.base).toBe('a');
    expect(lin.models.map((m) => m.model)).toEqual(['a', 'b']);
    expect(lin.parameters).toEqual({ normalize: true });
    const bc = parseMergekitYaml(`
merge_method: breadcrumbs
base_model: base
models:
  - model: ft
    parameters: {weight: 1, density: 0.9, gamma: 0.01}
parameters:
  lambda: 0.5
`);
    expect(bc.models[0]!.parameters).toEqual({ weight: 1, density: 0.9, gamma: 0.01 });
  });

  it('accepts tokenizer_source: base (and tokenizer: {source: base}): the base tokenizer is what a merge keeps', () => {
    const yaml = 'merge_method: ties\nbase_model: b\nmodels:\n  - model: a\n    parameters: {weight: 1}\n';
    const plain = parseMergekitYaml(yaml);
    expect(parseMergekitYaml(`${yaml}tokenizer_source: base\n`)).toEqual(plain);
    expect(parseMergekitYaml(`${yaml}tokenizer:\n  source: base\n`)).toEqual(plain);
  });

  it('reads YAML 1.1 booleans as PyYAML does', () => {
    const r = parseMergekitYaml('merge_method: ties\nbase_model: b\nmodels:\n  - model: a\n    parameters: {weight: 1}\nparameters:\n  normalize: no\n');
    expect(r.parameters.normalize).toBe(false);
  });
});

describe('parseMergekitYaml errors', () => {
  it('rejects slices configs with a clear message', () => {
    const e = errorOf(`
slices:
  - sources:
      - model: a
        layer_range: [0, 32]
      - model: b
        layer_range: [0, 32]
merge_method: slerp
base_model: a
parameters:
  t: 0.5
`);
    expect(e.message).toBe('merge.yml: slices: only `models:` configs are supported; `slices:` (layer ranges / frankenmerges) is not: list whole models under `models:`');
    expect(e.file).toBe('merge.yml');
  });

  it('names unsupported keys, methods and parameters', () => {
    const base = 'base_model: b\nmodels:\n  - model: a\n    parameters: {weight: 1}\n';
    expect(errorOf(`merge_method: ties\n${base}tokenizer_source: union\n`).message).toMatch(/tokenizer_source: "union" is not supported: only `base`/);
    expect(errorOf(`merge_method: ties\n${base}tokenizer_source: org/other-model\n`).message).toMatch(/tokenizer_source: "org\/other-model" is not supported: only `base`/);
    expect(errorOf(`merge_method: ties\n${base}tokenizer:\n  source: union\n`).message).toMatch(/tokenizer\.source: "union" is not supported/);
    expect(errorOf(`merge_method: ties\n${base}tokenizer:\n  source: base\n  tokens: {x: 1}\n`).message).toMatch(/tokenizer: only `tokenizer: \{source: base\}` is supported/);
    expect(errorOf(`merge_method: ties\n${base}lora_rank: 8\n`).message).toMatch(/lora_rank: unsupported key \(supported: merge_method, base_model, models, parameters, dtype, out_dtype, tokenizer_source, tokenizer\)/);
    expect(errorOf(`merge_method: della\n${base}`).message).toMatch(/merge_method: mergekit's 'della' is not supported by the studio; it supports task_arithmetic, linear, ties/);
    expect(errorOf(`merge_method: magic\n${base}`).message).toMatch(/merge_method: unknown merge method 'magic'; the studio supports task_arithmetic/);
    expect(errorOf(`${base}`).message).toMatch(/merge_method: missing/);
    expect(errorOf(`merge_method: ties\nmodels:\n  - model: a\n    parameters: {weight: 1}\n`).message).toMatch(/base_model: missing: ties needs the base checkpoint/);
    expect(errorOf('merge_method: ties\nbase_model: b\nmodels:\n  - model: a\n    parameters: {weight: 1, epsilon: 0.1}\n').message).toMatch(/models\[0\]\.parameters\.epsilon: ties does not take `epsilon`/);
    expect(errorOf('merge_method: ties\nbase_model: b\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: c\n    parameters: {weight: 1, density: 0}\n').message).toMatch(/^merge\.yml: models\[1\]\.parameters\.density: density must be in \(0, 1\]/);
    expect(errorOf(`merge_method: ties\n${base}parameters:\n  rescale: 2\n`).message).toMatch(/parameters\.rescale: expected true or false \(mergekit's rescale\), got 2/);
    expect(errorOf('merge_method: slerp\nbase_model: b\nmodels:\n  - model: x\n  - model: z\nparameters: {t: 0.5}\n').message).toMatch(/models: slerp interpolates between exactly two models/);
    expect(errorOf(`merge_method: ties\n${base}dtype: int4\n`).message).toMatch(/dtype: expected one of float32, float16, bfloat16/);
  });

  it('keeps LoRA references (MODEL+ADAPTER) whole both ways', () => {
    const r = parseMergekitYaml('merge_method: ties\nbase_model: b\nmodels:\n  - model: a+lora/adapter\n    parameters: {weight: 1}\n', 'merge.yml');
    expect(r.models.map((m) => m.model)).toEqual(['a+lora/adapter']);
    expect(recipeToMergekitYaml(r, 'float32')).toContain('model: a+lora/adapter');
    expect(canonicalRecipe(parseMergekitYaml(recipeToMergekitYaml(r, 'float32'), 'again.yml'))).toEqual({ ...canonicalRecipe(r), dtype: 'float32' });
  });

  it('rejects bad YAML and non-mappings', () => {
    expect(errorOf('merge_method: ties\nbase_model: [b\n').message).toMatch(/^merge\.yml: not valid YAML/);
    expect(errorOf('merge_method: ties\nmerge_method: linear\n').message).toMatch(/not valid YAML/);
    expect(errorOf('').message).toMatch(/empty config/);
    expect(errorOf('- a\n- b\n').message).toMatch(/must be a mapping/);
    expect(errorOf('merge_method: ties\nbase_model: b\n').message).toMatch(/models: missing/);
  });
});
