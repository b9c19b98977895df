import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.ts';
import { parseRecipe, recipeToJson, type MergeRecipe } from './recipe.ts';
import { methodNames } from './registry.ts';

const dem = {
  version: 1,
  method: 'task_arithmetic',
  base: 'ckpt/base',
  models: [
    { model: 'ckpt/prose', parameters: { weight: 0.5 } },
    { model: 'ckpt/code', parameters: { weight: [0.2, 1] } },
  ],
  parameters: {},
};

/** The InputError parseRecipe throws for `raw`, or a failure if it does not throw one. */
function errorOf(raw: unknown, file = 'recipe.json'): InputError {
  try {
    parseRecipe(raw, file);
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected parseRecipe to throw');
}

function withParams(method: string, models: unknown[], parameters: unknown = {}, base = 'b'): Record<string, unknown> {
  return { version: 1, method, base, models, parameters };
}

describe('parseRecipe', () => {
  it('parses a DEM recipe and writes the method defaults in', () => {
    const r = parseRecipe(dem, 'dem.json');
    expect(r).toEqual({
      version: 1,
      method: 'task_arithmetic',
      base: 'ckpt/base',
      models: [
        { model: 'ckpt/prose', parameters: { weight: 0.5 } },
        { model: 'ckpt/code', parameters: { weight: [0.2, 1] } },
      ],
      parameters: { lambda: 1, normalize: false },
    });
  });

  it('applies mergekit defaults per method', () => {
    const m = [{ model: 'a', parameters: { weight: 1 } }];
    expect(parseRecipe(withParams('linear', m)).parameters).toEqual({ normalize: true });
    expect(parseRecipe(withParams('ties', m)).parameters).toEqual({ lambda: 1, normalize: true, rescale: 'none' });
    expect(parseRecipe(withParams('dare_ties', m)).parameters).toEqual({ lambda: 1, normalize: false, rescale: 'density', seed: 0 });
    expect(parseRecipe(withParams('dare_linear', m)).parameters).toEqual({ lambda: 1, normalize: false, rescale: 'density', seed: 0 });
    expect(parseRecipe(withParams('breadcrumbs', m)).parameters).toEqual({ lambda: 1, normalize: false, rescale: 'none' });
    expect(parseRecipe(withParams('slerp', [{ model: 'a', parameters: {} }], { t: 0.3 })).parameters).toEqual({ t: 0.3 });
  });

  it('accepts every coefficient form and wraps a single filter object', () => {
    const r = parseRecipe(
      withParams('ties', [
        { model: 'a', parameters: { weight: 1, density: [0.2, 0.9, 0.5] } },
        { model: 'c', parameters: { weight: { filter: 'mlp', value: 0.4 }, density: [{ filter: 'attn', value: [0.3, 0.6] }, { value: 0.8 }] } },
      ]),
    );
    expect(r.models[1]!.parameters).toEqual({
      weight: [{ filter: 'mlp', value: 0.4 }],
      density: [{ filter: 'attn', value: [0.3, 0.6] }, { value: 0.8 }],
    });
  });

  it('drops a listed base for task-vector methods and slerp, keeps it for linear', () => {
    const listed = [{ model: 'b', parameters: {} }, { model: 'a', parameters: { weight: 1 } }];
    expect(parseRecipe(withParams('ties', listed)).models.map((m) => m.model)).toEqual(['a']);
    const slerp = parseRecipe(withParams('slerp', [{ model: 'b', parameters: {} }, { model: 'o', parameters: {} }], { t: [0, 1] }));
    expect(slerp.models).toEqual([{ model: 'o', parameters: {} }]);
    const lin = parseRecipe(withParams('linear', [{ model: 'b', parameters: { weight: 1 } }, { model: 'a', parameters: { weight: 2 } }]));
    expect(lin.models.map((m) => m.model)).toEqual(['b', 'a']);
  });

  it('names the file and the field path', () => {
    const e = errorOf(withParams('ties', [{ model: 'a', parameters: { weight: 1 } }, { model: 'c', parameters: { weight: 'heavy' } }]), 'mix.json');
    expect(e.file).toBe('mix.json');
    expect(e.code).toBe('input');
    expect(e.message).toBe('mix.json: models[1].parameters.weight: expected a number, a list of numbers (gradient across layers) or a list of {filter, value}, got the string "heavy"');
    expect(errorOf(withParams('ties', [{ model: 'a', parameters: { weight: [1, 'x'] } }])).message).toMatch(/models\[0\]\.parameters\.weight: a list must hold only numbers/);
    expect(errorOf(withParams('ties', [{ model: 'a', parameters: { weight: [{ filter: 'mlp', value: [0, 'x'] }] } }])).message).toMatch(/models\[0\]\.parameters\.weight\[0\]\.value\[1\]: expected a finite number/);
  });

  it('lists the known methods for an unknown one', () => {
    const e = errorOf(withParams('frankenmerge', []));
    expect(e.message).toMatch(/method: unknown merge method 'frankenmerge'/);
    for (const m of methodNames()) expect(e.message).toContain(m);
  });

  it('checks ranges: density in (0, 1], gamma in [0, 1), t in [0, 1]', () => {
    const d = (density: unknown): string => errorOf(withParams('ties', [{ model: 'a', parameters: { weight: 1, density } }])).message;
    expect(d(0)).toMatch(/models\[0\]\.parameters\.density: density must be in \(0, 1\], got 0$/);
    expect(d(1.5)).toMatch(/got 1\.5$/);
    expect(d([0.5, -0.1])).toMatch(/got -0\.1$/);
    expect(d([{ filter: 'mlp', value: 2 }])).toMatch(/density must be in \(0, 1\], got 2/);
    expect(parseRecipe(withParams('ties', [{ model: 'a', parameters: { weight: 1, density: 1 } }])).models[0]!.parameters.density).toBe(1);
    const g = errorOf(withParams('breadcrumbs', [{ model: 'a', parameters: { weight: 1, gamma: 1 } }])).message;
    expect(g).toMatch(/gamma must be in \[0, 1\), got 1/);
    expect(errorOf(withParams('slerp', [{ model: 'a', parameters: {} }], { t: [0, 1.2] })).message).toMatch(/parameters\.t: t must be in \[0, 1\], got 1\.2/);
  });

  it('accepts breadcrumbs with density + gamma > 1 (mergekit shrinks the top cut so that density remains) and a rescale choice', () => {
    const bc = (p: object, g: object = {}): unknown => withParams('breadcrumbs', [{ model: 'a', parameters: { weight: 1, ...p } }], g);
    expect(() => parseRecipe(bc({ density: 0.8, gamma: 0.3 }))).not.toThrow();
    expect(() => parseRecipe(bc({ density: [1, 0.5], gamma: 0.6 }))).not.toThrow();
    expect(parseRecipe(bc({ density: 0.9 }, { rescale: 'l1' })).parameters.rescale).toBe('l1');
    expect(errorOf(bc({ density: 0.9 }, { rescale: 'density' })).message).toMatch(/parameters\.rescale: expected one of none, l1, got the string "density"/);
    expect(errorOf(withParams('dare_linear', [{ model: 'a', parameters: { weight: 1 } }], { rescale: true })).message).toMatch(/parameters\.rescale: expected one of l1, density, none, got true/);
  });

  it('enforces slerp as two models with the base as t = 0', () => {
    const three = errorOf(withParams('slerp', [{ model: 'x', parameters: {} }, { model: 'y', parameters: {} }], { t: 0.5 })).message;
    expect(three).toMatch(/models: slerp interpolates between exactly two models, the base \(t = 0\) and one other \(t = 1\); got 2 models other than the base \(x, y\)/);
    expect(errorOf(withParams('slerp', [{ model: 'b', parameters: {} }], { t: 0.5 })).message).toMatch(/got 0 models other than the base/);
    expect(errorOf(withParams('slerp', [{ model: 'x', parameters: {} }])).message).toMatch(/parameters: slerp needs `t`/);
    expect(errorOf(withParams('slerp', [{ model: 'x', parameters: { weight: 1 } }], { t: 0.5 })).message).toMatch(/models\[0\]\.parameters\.weight: slerp does not take `weight`/);
    expect(errorOf({ version: 1, method: 'slerp', models: [], parameters: {} }).message).toMatch(/base: missing: slerp needs a base/);
  });

  it('rejects parameters a method does not take, pointing at the right place', () => {
    expect(errorOf(withParams('ties', [{ model: 'a', parameters: { weight: 1 } }], { t: 0.5 })).message).toMatch(/parameters\.t: ties does not take `t` \(it is used by slerp\); ties takes weight, density, lambda, normalize, rescale here/);
    expect(errorOf(withParams('ties', [{ model: 'a', parameters: { weight: 1, lambda: 2 } }])).message).toMatch(/models\[0\]\.parameters\.lambda: `lambda` is a global parameter of ties/);
    expect(errorOf(withParams('task_arithmetic', [{ model: 'a', parameters: { weight: 1, density: 0.5 } }])).message).toMatch(/task_arithmetic does not take `density` \(it is used by ties, dare_linear, dare_ties, breadcrumbs, breadcrumbs_ties\)/);
    expect(errorOf(withParams('ties', [{ model: 'a', parameters: { weight: 1 } }], { seed: 3 })).message).toMatch(/parameters\.seed: ties does not take `seed`/);
    expect(errorOf(withParams('dare_ties', [{ model: 'a', parameters: { weight: 1 } }], { seed: 1.5 })).message).toMatch(/parameters\.seed: expected an integer/);
    expect(errorOf(withParams('ties', [{ model: 'a', parameters: { weight: 1 } }], { normalize: 'yes' })).message).toMatch(/parameters\.normalize: expected true or false/);
    expect(errorOf(withParams('model_stock', [{ model: 'a', parameters: { weight: 1 } }, { model: 'c', parameters: {} }])).message).toMatch(/model_stock does not take `weight`.*takes no parameters/);
  });

  it('requires a weight per model unless a global weight is given', () => {
    expect(errorOf(withParams('ties', [{ model: 'a', parameters: { weight: 1 } }, { model: 'c', parameters: {} }])).message).toMatch(/models\[1\]\.parameters: ties needs a `weight` for model 'c' \(or a global parameters\.weight\)/);
    const r = parseRecipe(withParams('ties', [{ model: 'a', parameters: {} }, { model: 'c', parameters: {} }], { weight: 0.5 }));
    expect(r.parameters.weight).toBe(0.5);
  });

  it('checks filter lists', () => {
    const w = (weight: unknown): string => errorOf(withParams('linear', [{ model: 'a', parameters: { weight } }])).message;
    expect(w([{ value: 1 }, { filter: 'mlp', value: 2 }])).toMatch(/weight\[0\]: an entry without filter matches every tensor, so it must be the last entry/);
    expect(w([{ filter: '*', value: 1 }, { filter: 'mlp', value: 2 }])).toMatch(/weight\[0\]: an entry without filter/);
    expect(w([{ filter: '', value: 1 }])).toMatch(/weight\[0\]\.filter: expected a non-empty tensor-name substring/);
    expect(w([{ filter: 'mlp' }])).toMatch(/weight\[0\]: a filter entry needs a `value`/);
    expect(w([{ filter: 'mlp', value: 1, weight: 2 }])).toMatch(/weight\[0\]\.weight: unknown key in a filter entry/);
    expect(w([])).toMatch(/weight: empty list/);
    expect(w([{ filter: 'mlp', value: [] }])).toMatch(/value: a gradient needs at least one value/);
  });

  it('checks the recipe shape and other cross-field rules', () => {
    expect(errorOf(null).message).toMatch(/a merge recipe must be an object/);
    expect(errorOf({ ...dem, version: 2 }).message).toMatch(/version: unsupported recipe version 2/);
    expect(errorOf({ ...dem, merge_method: 'ties' }).message).toMatch(/merge_method: unknown key in a merge recipe/);
    expect(errorOf({ ...dem, base: '' }).message).toMatch(/base: expected a checkpoint id or path/);
    expect(errorOf({ ...dem, models: 'a' }).message).toMatch(/models: expected a list/);
    expect(errorOf({ ...dem, models: [] }).message).toMatch(/models: task_arithmetic needs at least 1 model other than the base; got none/);
    expect(errorOf({ ...dem, models: [dem.models[0], dem.models[0]] }).message).toMatch(/models\[1\]\.model: 'ckpt\/prose' is already models\[0\]/);
    expect(errorOf({ ...dem, dtype: 'int8' }).message).toMatch(/dtype: expected one of float32, float16, bfloat16/);
    expect(errorOf(withParams('model_stock', [{ model: 'a', parameters: {} }])).message).toMatch(/model_stock needs at least two fine-tuned models/);
    expect(errorOf(withParams('linear', [{ model: 'a', parameters: { weight: 1 } }, { model: 'c', parameters: { weight: -1 } }])).message).toMatch(/parameters\.normalize: linear with normalize: true divides by the sum of weights, which is 0/);
    expect(() => parseRecipe(withParams('linear', [{ model: 'a', parameters: { weight: 1 } }, { model: 'c', parameters: { weight: -1 } }], { normalize: false }))).not.toThrow();
  });
});

describe('recipeToJson', () => {
  it('prints canonical, stable JSON with inline numeric lists', () => {
    const r = parseRecipe({
      ...withParams('ties', [
        { model: 'a', parameters: { density: [0.3, 0.6], weight: 1 } },
        { model: 'c', parameters: { weight: [{ value: -0.5 }] } },
      ], { normalize: false }),
      dtype: 'bfloat16',
    });
    expect(recipeToJson(r)).toBe(`{
  "version": 1,
  "method": "ties",
  "base": "b",
  "models": [
    {
      "model": "a",
      "parameters": {
        "weight": 1,
        "density": [0.3, 0.6]
      }
    },
    {
      "model": "c",
      "parameters": {
        "weight": [
          {
            "value": -0.5
          }
        ]
      }
    }
  ],
  "parameters": {
    "lambda": 1,
    "normalize": false,
    "rescale": "none"
  },
  "dtype": "bfloat16"
}
`);
  });

  it('does not depend on key order and round-trips through parseRecipe', () => {
    const a: MergeRecipe = {
      dtype: 'float16',
      parameters: { normalize: false, lambda: 2, seed: 9, rescale: 'l1', density: [{ filter: 'mlp', value: [0.25, 1e-3] }, { value: 0.5 }] },
      models: [{ parameters: { weight: -1.25e-7 }, model: 'x' }],
      base: 'b',
      method: 'dare_linear',
      version: 1,
    };
    const text = recipeToJson(a);
    expect(text).toContain('"value": [0.25, 0.001]');
    expect(text).toContain('"weight": -1.25e-7');
    const back = parseRecipe(JSON.parse(text));
    expect(back).toEqual(a);
    expect(recipeToJson(back)).toBe(text);
  });
});
