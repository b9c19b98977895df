import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { folderFileSet } from '../../node/files.ts';
import { testRuntime } from '../../testing/gpu.ts';
import { InputError } from '../errors.ts';
import { F32_MAX } from '../io/dtypes.ts';
import { Workspace } from '../workspace/workspace.ts';
import type { FolderSink } from './export.ts';
import { resolveParams } from './methods/params.ts';
import { parseRecipe } from './recipe.ts';
import { getMethod } from './registry.ts';
import { parseMergekitYaml } from './yaml.ts';

/**
 * Numbers a merge computes with are f32 on the GPU: a coefficient that is finite in float64 but
 * beyond f32 range is refused where the recipe is read (methods/params.ts valueProblem, one rule
 * for JSON, YAML, the CLI and the studio), and a merge whose values still overflow (λ·ω beyond
 * f32, an F16 output beyond 65504) fails on the GPU's non-finite check naming the tensor, before
 * anything is written or evaluated.
 */
const FIX = resolve('e2e/fixtures');

const recipe = (weight: unknown, parameters: Record<string, unknown> = {}, dtype?: string) =>
  parseRecipe({ version: 1, method: 'task_arithmetic', base: 'base', models: [{ model: 'ft', parameters: { weight } }], parameters, ...(dtype ? { dtype } : {}) }, 'recipe.json');

describe('f32 range at the recipe boundary', () => {
  it('refuses ω, λ and filtered or gradient values beyond ±F32_MAX in JSON and YAML; F32_MAX itself is accepted', () => {
    expect(() => recipe(1e39)).toThrow(/models\[0\]\.parameters\.weight: expected a number within float32 range/);
    expect(() => recipe(-1e39)).toThrow(InputError);
    expect(() => recipe([0.5, 1e39])).toThrow(/models\[0\]\.parameters\.weight: expected a number within float32 range/);
    expect(() => recipe([{ filter: 'mlp', value: 3.5e38 }, { value: 1 }])).toThrow(/float32 range/);
    expect(() => recipe(1, { lambda: 1e39 })).toThrow(/parameters\.lambda: expected a number within float32 range/);
    expect(recipe(F32_MAX, { lambda: -F32_MAX }).models[0]!.parameters.weight).toBe(F32_MAX);
    const yaml = (w: string) => `merge_method: task_arithmetic\nbase_model: base\nmodels:\n  - model: ft\n    parameters:\n      weight: ${w}\n`;
    expect(() => parseMergekitYaml(yaml('1.0e+39'), 'cfg.yml')).toThrow(/cfg\.yml: models\[0\]\.parameters\.weight: expected a number within float32 range/);
    expect(parseMergekitYaml(yaml('3.0e+38'), 'cfg.yml').models[0]!.parameters.weight).toBe(3e38);
  });

  it('resolveParams (programmatic parameters) applies the same rule', () => {
    const ties = getMethod('ties');
    expect(() => resolveParams(ties, { lambda: 1e39 }, 2)).toThrow(/parameter 'lambda': expected a number within float32 range/);
    expect(() => resolveParams(ties, { density: [0.5, Infinity] }, 2)).toThrow(/finite number/);
    expect(resolveParams(ties, { lambda: 3e38 }, 2).lambda).toBe(3e38);
  });
});

describe('non-finite merge output', () => {
  async function workspace(): Promise<Workspace> {
    const ws = new Workspace({ runtime: () => testRuntime() });
    await ws.open('base', 'tiny-gpt2', await folderFileSet(join(FIX, 'tiny-gpt2')));
    await ws.open('ft', 'tiny-gpt2-ft-a', await folderFileSet(join(FIX, 'tiny-gpt2-ft-a')));
    return ws;
  }
  /** A sink that records whether it was committed. */
  function recordingSink(): FolderSink & { state: string[] } {
    const state: string[] = [];
    return {
      state,
      begin: async () => void state.push('begin'),
      create: async (path) => ({ write: async () => {}, close: async () => void state.push(`close ${path}`), abort: async () => {} }),
      commit: async () => void state.push('commit'),
      abort: async () => void state.push('abort'),
    };
  }

  it('λ·ω beyond f32 (each within range): the export aborts naming the first tensor, nothing committed', async () => {
    const ws = await workspace();
    const sink = recordingSink();
    const error = await ws.exportMerge(recipe(10, { lambda: 1e38 }), sink).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).tensor).toMatch(/\S/);
    expect((error as Error).message).toMatch(/the merge produced \d+ non-finite values? \(±Inf\/NaN; the first at element \d+\) in F32/);
    expect(sink.state).toEqual(['begin', 'abort']);
  });

  it('an F16 output beyond 65504 fails the same way; a merge within range passes the check', async () => {
    const ws = await workspace();
    await expect(ws.exportMerge(recipe(1e3, { lambda: 1e6 }, 'float16'), recordingSink())).rejects.toThrow(/non-finite values? .* in F16/);
    const ok = recordingSink();
    await ws.exportMerge(recipe(0.5, { lambda: 1 }, 'float16'), ok);
    expect(ok.state.at(-1)).toBe('commit');
  });

  it('the merged model a perplexity run evaluates (GPU output) is checked too', async () => {
    const ws = await workspace();
    await ws.addText('t', 'text', 'The lighthouse keeper kept a ledger of every ship.', 'base');
    const error = await ws.evaluate({ recipe: recipe(10, { lambda: 1e38 }), texts: ['t'] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/non-finite/);
  });
});
