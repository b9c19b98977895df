import { describe, expect, it } from 'vitest';
import { METHOD_NAMES, METHOD_SPECS } from './recipe.ts';
import { getMethod, methodNames } from './registry.ts';

// The recipe layer and the kernel registry describe the same methods: one list, one set of
// defaults (mergekit's), so a recipe, the CLI and the studio's method picker agree.
describe('recipe schema and method registry agree', () => {
  it('name the same methods', () => {
    expect([...METHOD_NAMES].sort()).toEqual(methodNames().sort());
  });

  it('share defaults for every parameter both know', () => {
    for (const name of METHOD_NAMES) {
      const defaults = METHOD_SPECS[name].defaults as Record<string, unknown>;
      for (const p of getMethod(name).params) {
        if (defaults[p.name] !== undefined) expect({ name, param: p.name, value: p.default }).toEqual({ name, param: p.name, value: defaults[p.name] });
      }
    }
  });
});
