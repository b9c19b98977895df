import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.ts';
import { getMethod, methodNames, METHODS, resolveParams, usesWeights, WEIGHT } from './registry.ts';

describe('merge method registry', () => {
  it('lists every method with a description, a reference and defaults inside their ranges', () => {
    expect(methodNames()).toEqual(['task_arithmetic', 'linear', 'ties', 'dare_linear', 'dare_ties', 'breadcrumbs', 'breadcrumbs_ties', 'slerp', 'model_stock']);
    for (const m of METHODS) {
      expect(m.description.length).toBeGreaterThan(10);
      expect(m.reference).toMatch(/^https:\/\//);
      expect(m.minModels).toBeGreaterThanOrEqual(1);
      expect(m.maxModels).toBeGreaterThanOrEqual(m.minModels);
      for (const p of m.params) {
        if (typeof p.default === 'number') {
          if (p.min !== undefined) expect(p.default).toBeGreaterThanOrEqual(p.min);
          if (p.max !== undefined) expect(p.default).toBeLessThanOrEqual(p.max);
        }
      }
      expect(() => resolveParams(m, {}, 3)).not.toThrow();
    }
  });

  it('declares every parameter once, completely: label, scope, a starting value for controls', () => {
    for (const m of METHODS) {
      expect(new Set(m.params.map((p) => p.name)).size, m.name).toBe(m.params.length);
      // Recipes print model-scope parameters first, then the global ones.
      const scopes = m.params.map((p) => p.scope);
      expect(scopes, m.name).toEqual([...scopes].sort((a, b) => Number(a === 'global') - Number(b === 'global')));
      for (const p of m.params) {
        expect(p.label.length, `${m.name}.${p.name}`).toBeGreaterThan(0);
        expect(p.description.length, `${m.name}.${p.name}`).toBeGreaterThan(10);
        // A control needs a value to start from: the default, or for a required one its initial value.
        if (p.name !== WEIGHT) expect(p.default ?? p.initial, `${m.name}.${p.name}`).toBeDefined();
        if (p.scope === 'model') expect(p.varies, `${m.name}.${p.name}`).toBe(true);
      }
      expect(m.capabilities.baseIsInput && m.capabilities.needsBase, m.name).toBe(false);
    }
    expect(usesWeights(getMethod('slerp'))).toBe(false);
    expect(usesWeights(getMethod('task_arithmetic'))).toBe(true);
  });

  it('names the known methods when asked for an unknown one', () => {
    expect(() => getMethod('frankenmerge')).toThrow(InputError);
    expect(() => getMethod('frankenmerge')).toThrow(/unknown merge method 'frankenmerge' \(known: task_arithmetic, linear, ties/);
  });

  it('resolves defaults and per-model lists, and rejects bad parameters with typed errors', () => {
    const ties = getMethod('ties');
    // mergekit's defaults: density 1 (no trimming unless asked).
    expect(resolveParams(ties, {}, 2)).toEqual({ density: [1, 1], lambda: 1, normalize: true, rescale: 'none' });
    expect(resolveParams(ties, { density: [0.2, 0.4] }, 2).density).toEqual([0.2, 0.4]);
    const ctx = { tensor: 'model.layers.0.mlp.up_proj.weight' };
    expect(() => resolveParams(ties, { density: [0.2] }, 2, ctx)).toThrow(/model\.layers\.0\.mlp\.up_proj\.weight.*1 values for 2 models/);
    expect(() => resolveParams(ties, { density: 1.5 }, 2)).toThrow(/above its maximum 1/);
    expect(() => resolveParams(ties, { lambda: [1, 2] }, 2)).toThrow(/takes one number/);
    expect(() => resolveParams(ties, { epsilon: 0.1 }, 2)).toThrow(/unknown parameter 'epsilon'/);
    expect(() => resolveParams(ties, { normalize: 1 }, 2)).toThrow(/true or false/);
    expect(() => resolveParams(getMethod('dare_linear'), { density: 0 }, 1)).toThrow(/below its minimum \(exclusive\) 0/);
  });

  it('checks model counts and the base', () => {
    const base = new Float64Array([1, 2]);
    const m = [new Float64Array([1, 3]), new Float64Array([0, 2])];
    expect(() => getMethod('slerp').cpu(base, m, [1, 1], {}, { tensorIndex: 0 })).toThrow(/takes 1 models besides the base, got 2/);
    expect(() => getMethod('task_arithmetic').cpu(undefined, m, [1, 1], {}, { tensorIndex: 0 })).toThrow(/needs a base model/);
    expect(() => getMethod('linear').cpu(undefined, m, [1], {}, { tensorIndex: 0 })).toThrow(/1 weights for 2 models/);
    expect(Array.from(getMethod('linear').cpu(undefined, m, [1, 3], {}, { tensorIndex: 0 }))).toEqual([0.25, 2.25]);
    expect(Array.from(getMethod('task_arithmetic').cpu(base, m, [1, -1], { lambda: 2 }, { tensorIndex: 0 }))).toEqual([3, 4]);
  });
});
