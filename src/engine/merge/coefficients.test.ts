import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.ts';
import {
  evaluateCoefficient,
  filterMatches,
  gradientAt,
  layerPosition,
  resolveCoefficient,
  resolveTensorParams,
} from './coefficients.ts';
import { parseRecipe, type Coefficient } from './recipe.ts';

// Expected values below are worked by hand from mergekit's rules (see coefficients.ts):
// t = layer / (L - 1); s = t (n - 1); value = (1 - frac) a_i + frac a_{i+1}.

describe('layerPosition', () => {
  it('spreads layers over [0, 1] and puts non-layer tensors at 0', () => {
    expect(layerPosition(0, 12)).toBe(0);
    expect(layerPosition(11, 12)).toBe(1);
    expect(layerPosition(3, 5)).toBe(0.75);
    expect(layerPosition(null, 12)).toBe(0);
    // mergekit: a single-layer slice sits at t = 1.
    expect(layerPosition(0, 1)).toBe(1);
    expect(layerPosition(null, 1)).toBe(0);
  });
  it('rejects layers outside the model', () => {
    expect(() => layerPosition(12, 12)).toThrow(RangeError);
    expect(() => layerPosition(-1, 12)).toThrow(RangeError);
    expect(() => layerPosition(1.5, 12)).toThrow(RangeError);
    expect(() => layerPosition(0, 0)).toThrow(RangeError);
  });
});

describe('gradients', () => {
  const g = [0, 0.5, 0.3, 0.7, 1];
  it('interpolates anchors linearly across 9 layers (anchors at layers 0, 2, 4, 6, 8)', () => {
    const at = (layer: number): number => resolveCoefficient(g, 'model.layers.x.mlp.up_proj.weight', layer, 9);
    expect(at(0)).toBe(0);
    expect(at(1)).toBeCloseTo(0.25, 15); // s = 0.5: halfway 0 -> 0.5
    expect(at(2)).toBeCloseTo(0.5, 15);
    expect(at(3)).toBeCloseTo(0.4, 15); // halfway 0.5 -> 0.3
    expect(at(4)).toBeCloseTo(0.3, 15);
    expect(at(6)).toBeCloseTo(0.7, 15);
    expect(at(7)).toBeCloseTo(0.85, 15); // halfway 0.7 -> 1
    expect(at(8)).toBe(1);
  });
  it('interpolates between anchors that do not fall on layers (12 layers)', () => {
    // layer 5: t = 5/11, s = 20/11, frac = 9/11 between 0.5 and 0.3 -> (2/11)0.5 + (9/11)0.3 = 3.7/11
    expect(resolveCoefficient(g, 'x', 5, 12)).toBeCloseTo(3.7 / 11, 14);
    // layer 10: t = 10/11, s = 40/11, frac = 7/11 between 0.7 and 1 -> 0.7 + 0.3 * 7/11
    expect(resolveCoefficient(g, 'x', 10, 12)).toBeCloseTo(0.7 + 2.1 / 11, 14);
  });
  it('gives tensors outside the layers the first anchor', () => {
    expect(resolveCoefficient([0.2, 0.9], 'model.embed_tokens.weight', null, 4)).toBe(0.2);
    expect(resolveCoefficient([0.2, 0.9], 'lm_head.weight', null, 4)).toBe(0.2);
  });
  it('handles one-anchor gradients and a one-layer model', () => {
    expect(gradientAt([0.4], 0.7)).toBe(0.4);
    expect(resolveCoefficient([0.2, 0.9], 'h.0.attn.c_attn.weight', 0, 1)).toBe(0.9);
    expect(resolveCoefficient([0.2, 1.0], 'h.1.mlp.c_fc.weight', 1, 3)).toBeCloseTo(0.6, 15);
  });
});

describe('filters', () => {
  const t: Coefficient = [
    { filter: 'self_attn', value: [0, 0.5, 0.3, 0.7, 1] },
    { filter: 'mlp', value: [1, 0.5, 0.7, 0.3, 0] },
    { value: 0.5 },
  ];
  it('matches by substring, first match wins, default last', () => {
    expect(resolveCoefficient(t, 'model.layers.4.self_attn.q_proj.weight', 4, 9)).toBeCloseTo(0.3, 15);
    expect(resolveCoefficient(t, 'model.layers.4.mlp.up_proj.weight', 4, 9)).toBeCloseTo(0.7, 15);
    expect(resolveCoefficient(t, 'model.layers.1.mlp.down_proj.weight', 1, 9)).toBeCloseTo(0.75, 15);
    expect(resolveCoefficient(t, 'model.layers.4.input_layernorm.weight', 4, 9)).toBe(0.5);
    expect(resolveCoefficient(t, 'model.embed_tokens.weight', null, 9)).toBe(0.5);
    const overlapping: Coefficient = [{ filter: 'attn', value: 1 }, { filter: 'q_proj', value: 2 }];
    expect(resolveCoefficient(overlapping, 'h.0.attn.q_proj.weight', 0, 2)).toBe(1);
  });
  it('is case-sensitive, treats * as a default, and an empty name matches only defaults', () => {
    expect(filterMatches('MLP', 'h.0.mlp.c_fc.weight')).toBe(false);
    expect(filterMatches('*', 'anything')).toBe(true);
    expect(filterMatches(undefined, '')).toBe(true);
    expect(filterMatches('mlp', '')).toBe(false);
    expect(evaluateCoefficient([{ filter: 'mlp', value: 3 }, { filter: '*', value: 4 }], 'h.0.ln_1.weight', 0)).toBe(4);
  });
  it('reports a tensor no entry matches', () => {
    const c: Coefficient = [{ filter: 'mlp', value: 1 }];
    expect(evaluateCoefficient(c, 'h.0.attn.c_proj.weight', 0)).toBeUndefined();
    expect(() => resolveCoefficient(c, 'h.0.attn.c_proj.weight', 0, 2)).toThrow(InputError);
    expect(() => resolveCoefficient(c, 'h.0.attn.c_proj.weight', 0, 2)).toThrow(/h\.0\.attn\.c_proj\.weight.*default/);
  });
});

describe('resolveTensorParams', () => {
  const dem = parseRecipe({
    version: 1,
    method: 'task_arithmetic',
    base: 'base',
    models: [
      { model: 'prose', parameters: { weight: 0.5 } },
      { model: 'code', parameters: { weight: [0.2, 1.0] } },
      { model: 'email', parameters: { weight: [{ filter: 'mlp', value: -0.25 }, { value: [1, 0] }] } },
    ],
    parameters: { lambda: 1.5 },
  });
  it('evaluates every model at the tensor position (DEM recipe)', () => {
    const p = resolveTensorParams(dem, 'h.2.mlp.c_fc.weight', 2, 5); // t = 0.5
    expect(p.position).toBe(0.5);
    expect(p.models).toEqual(['prose', 'code', 'email']);
    expect(p.weights[0]).toBe(0.5);
    expect(p.weights[1]).toBeCloseTo(0.6, 15);
    expect(p.weights[2]).toBe(-0.25);
    // task_arithmetic has no sparsification parameters at all.
    expect(p.params).toEqual({ lambda: 1.5, normalize: false });
    expect(p.method).toBe('task_arithmetic');
    const attn = resolveTensorParams(dem, 'h.1.attn.c_attn.weight', 1, 5); // t = 0.25
    expect(attn.weights[1]).toBeCloseTo(0.4, 15);
    expect(attn.weights[2]).toBeCloseTo(0.75, 15);
    const wte = resolveTensorParams(dem, 'wte.weight', null, 5);
    expect(wte.weights).toEqual([0.5, 0.2, 1]);
  });
  it('falls back model -> global -> default', () => {
    const r = parseRecipe({
      version: 1,
      method: 'ties',
      base: 'b',
      models: [
        { model: 'a', parameters: { weight: 1, density: [{ filter: 'attn', value: 0.3 }] } },
        { model: 'c', parameters: { weight: 2 } },
      ],
      parameters: { density: [{ filter: 'mlp', value: 0.6 }] },
    });
    const attn = resolveTensorParams(r, 'h.0.attn.c_attn.weight', 0, 2);
    expect(attn.params.density).toEqual([0.3, 1]);
    const mlp = resolveTensorParams(r, 'h.0.mlp.c_fc.weight', 0, 2);
    expect(mlp.params.density).toEqual([0.6, 0.6]);
    const ln = resolveTensorParams(r, 'h.0.ln_1.weight', 0, 2);
    expect(ln.params.density).toEqual([1, 1]);
    expect(ln.params.normalize).toBe(true);
    expect(ln.params.lambda).toBe(1);
  });
  it('uses global weight when a model has none, and fails when neither matches', () => {
    const r = parseRecipe({
      version: 1,
      method: 'dare_linear',
      base: 'b',
      models: [{ model: 'a', parameters: { weight: [{ filter: 'mlp', value: 0.7 }] } }, { model: 'c', parameters: {} }],
      parameters: { weight: [{ filter: 'attn', value: 0.4 }], density: 0.5, seed: 42 },
    });
    const attn = resolveTensorParams(r, 'h.0.attn.c_proj.weight', 0, 2);
    expect(attn.weights).toEqual([0.4, 0.4]);
    expect(attn.params.seed).toBe(42);
    // 'a' has its own mlp weight; 'c' has none and the global one only covers attn.
    expect(() => resolveTensorParams(r, 'h.0.mlp.c_proj.weight', 0, 2)).toThrow(/weight for model 'c'/);
  });
  it('fails with the tensor named when a required weight resolves nowhere', () => {
    const r = parseRecipe({
      version: 1,
      method: 'task_arithmetic',
      base: 'b',
      models: [{ model: 'a', parameters: { weight: [{ filter: 'mlp', value: 0.7 }] } }],
      parameters: {},
    });
    expect(() => resolveTensorParams(r, 'h.0.ln_2.weight', 0, 2)).toThrow(InputError);
    expect(() => resolveTensorParams(r, 'h.0.ln_2.weight', 0, 2)).toThrow(/tensor 'h\.0\.ln_2\.weight'.*weight for model 'a'/);
  });
  it('resolves breadcrumbs density and gamma per tensor (density + gamma > 1 accepted), with the default gamma 0.01', () => {
    const r = parseRecipe({
      version: 1,
      method: 'breadcrumbs',
      base: 'b',
      models: [{ model: 'a', parameters: { weight: 1, density: [{ filter: 'mlp', value: 0.9 }, { value: 0.5 }] } }],
      parameters: { gamma: [{ filter: 'c_fc', value: 0.2 }, { value: 0.05 }] },
    });
    const ok = resolveTensorParams(r, 'h.0.mlp.c_proj.weight', 0, 2);
    expect({ model: ok.models[0], weight: ok.weights[0], density: (ok.params.density as number[])[0], gamma: (ok.params.gamma as number[])[0] }).toEqual({ model: 'a', weight: 1, density: 0.9, gamma: 0.05 });
    // 0.9 + 0.2 > 1: accepted; the top cut shrinks so that density remains (reference.outlierRanks).
    const over = resolveTensorParams(r, 'h.0.mlp.c_fc.weight', 0, 2);
    expect([(over.params.density as number[])[0], (over.params.gamma as number[])[0]]).toEqual([0.9, 0.2]);
    const d = parseRecipe({ version: 1, method: 'breadcrumbs', base: 'b', models: [{ model: 'a', parameters: { weight: 1, density: 0.9 } }], parameters: {} });
    expect((resolveTensorParams(d, 'x', null, 2).params.gamma as number[])[0]).toBe(0.01);
  });
  it('resolves slerp t and leaves weights neutral', () => {
    const r = parseRecipe({
      version: 1,
      method: 'slerp',
      base: 'b',
      models: [{ model: 'b', parameters: {} }, { model: 'o', parameters: {} }],
      parameters: { t: [{ filter: 'self_attn', value: [0, 0.5, 0.3, 0.7, 1] }, { value: 0.5 }] },
    });
    const p = resolveTensorParams(r, 'model.layers.3.self_attn.o_proj.weight', 3, 9);
    expect(p.params.t).toBeCloseTo(0.4, 15);
    expect(p.models).toEqual(['o']);
    expect(p.weights).toEqual([1]);
    expect(Object.keys(p.params)).toEqual(['t']);
    expect(resolveTensorParams(r, 'model.norm.weight', null, 9).params.t).toBe(0.5);
  });
  it('refuses a linear normalize whose weights sum to zero on some tensor', () => {
    const r = parseRecipe({
      version: 1,
      method: 'linear',
      base: 'a',
      models: [
        { model: 'a', parameters: { weight: 1 } },
        { model: 'c', parameters: { weight: [{ filter: 'mlp', value: -1 }, { value: 1 }] } },
      ],
      parameters: {},
    });
    const attn = resolveTensorParams(r, 'h.0.attn.c_attn.weight', 0, 2);
    expect(attn.models.map((m, i) => [m, attn.weights[i]])).toEqual([['a', 1], ['c', 1]]);
    expect(attn.params.normalize).toBe(true);
    expect(() => resolveTensorParams(r, 'h.0.mlp.c_fc.weight', 0, 2)).toThrow(/sum of weights/);
  });
});
