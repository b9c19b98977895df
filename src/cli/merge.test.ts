import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { IncompatibleCheckpointError, SafetensorsError, openCheckpoint, type Checkpoint, isFloatDType, type FloatDType, decodeArray, elementBits, numberToBf16Bits, numberToF16Bits, resolveTensorParams, signElection, canonicalRecipe, parseRecipe, type MergeRecipe, allParams, getMethod, methodNames, METHODS, WEIGHT, parseMergekitYaml } from '../engine/index.ts';
import { main, USAGE } from './main.ts';
import { MERGE_OPTIONS } from './mergeArgs.ts';
import { folderFileSet } from '../node/files.ts';
import { runMerge } from './merge.ts';

/**
 * `dem merge` end to end on the fixture checkpoints: every exported tensor against an
 * independent float64 computation — the method's `cpu` reference on the decoded fixture
 * tensors with the per-tensor parameters of resolveTensorParams, rounded once to the output
 * dtype (RNE). F32 outputs: |out − ref| <= 1e-6·|ref| (plus 1e-7 of the tensor's largest input
 * magnitude, for results that cancel). F16/BF16 outputs: at most 1 ulp from the rounded reference (the GPU
 * rounds its f32 result; a value within f32 error of a rounding midpoint may land on the other
 * side). Sign elections decided by < 1e-5 of Σ|v| (an f32 coin flip) accept either sign's answer.
 */
const FIX = resolve('e2e/fixtures');
const GPT2 = join(FIX, 'tiny-gpt2');
const GPT2_FT = ['a', 'b', 'c'].map((s) => join(FIX, `tiny-gpt2-ft-${s}`));
const LLAMA = join(FIX, 'tiny-llama');
const LLAMA_FT = ['a', 'b'].map((s) => join(FIX, `tiny-llama-ft-${s}`));

const tmp = mkdtempSync(join(tmpdir(), 'dem-merge-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let outCount = 0;
const outDir = (): string => join(tmp, `out${outCount++}`);

const stats: string[] = [];
afterAll(() => console.log(`dem merge vs float64 reference, per case:\n${stats.join('\n')}`));

/** `dem merge ARGS` in process (the command itself; DemErrors propagate instead of printing). */
async function dem(...args: string[]): Promise<void> {
  expect(await runMerge(['--quiet', ...args])).toBe(0);
}

async function open(dir: string): Promise<Checkpoint> {
  return openCheckpoint(await folderFileSet(dir), dir);
}


const ordered16 = (h: number): number => (h & 0x8000 ? 0x8000 - (h & 0x7fff) : 0x8000 + h);

interface CaseStats {
  merged: number;
  copied: number;
  elements: number;
  /** max |err| / |ref| over results with |ref| >= 1% of the tensor's largest input. */
  worstRel: number;
  /** max |err| / the tensor's largest input magnitude, over all results. */
  worstAbs: number;
  worstUlp: number;
  exact: number;
  /** Coin-flip sign elections, checked against either answer. */
  ambiguous: number;
}

/**
 * Compares every tensor of the export in `dir` with the reference for `recipe` (models in recipe
 * order). Returns what it measured; fails on the first tensors outside the tolerance.
 */
async function verify(dir: string, recipe: MergeRecipe, paths: Record<string, string>): Promise<CaseStats> {
  const out = await open(dir);
  const base = await open(paths[recipe.base] ?? recipe.base);
  const models = await Promise.all(recipe.models.map((m) => open(paths[m.model] ?? m.model)));
  const method = getMethod(recipe.method);
  const outDtype = recipe.dtype ? ({ float32: 'F32', float16: 'F16', bfloat16: 'BF16' } as const)[recipe.dtype] : undefined;
  const s: CaseStats = { merged: 0, copied: 0, elements: 0, worstRel: 0, worstAbs: 0, worstUlp: 0, exact: 0, ambiguous: 0 };
  const problems: string[] = [];
  expect([...out.tensors.keys()]).toEqual([...base.tensors.keys()]);
  for (const [index, ref] of [...base.tensors.values()].entries()) {
    const got = out.tensors.get(ref.name)!;
    const bytes = await out.read(ref.name);
    const merged = ref.kind === 'param' && isFloatDType(ref.dtype) && models.every((m) => m.tensors.has(ref.name));
    if (!merged) {
      s.copied++;
      expect(got.dtype, ref.name).toBe(ref.dtype);
      expect(Buffer.from(bytes).equals(Buffer.from(await base.read(ref.name))), `${ref.name} copied bit for bit`).toBe(true);
      continue;
    }
    s.merged++;
    const n = ref.shape.reduce((a, b) => a * b, 1);
    const dtype = (outDtype ?? ref.dtype) as FloatDType;
    expect(got.dtype, ref.name).toBe(dtype);
    expect(got.shape).toEqual(ref.shape);
    const decode = async (c: Checkpoint): Promise<Float64Array> => decodeArray(await c.read(ref.name), c.tensors.get(ref.name)!.dtype as FloatDType, n);
    const b = await decode(base);
    const ms = await Promise.all(models.map(decode));
    const r = resolveTensorParams(recipe, ref.storedName, ref.layer, base.spec.numLayers);
    const { weights, params } = r;
    const ctx = { tensorIndex: index, tensor: ref.storedName };
    let want = method.cpu(method.capabilities.needsBase ? b : undefined, ms, weights, params, ctx);
    const election = signElection(method, b, ms, weights, params, ctx);
    if (election) {
      // Coin-flip sign elections may take either sign (see signElection): every element is still checked.
      s.ambiguous += election.ambiguous;
      want = election.pick(decodeArray(bytes, dtype, n), want);
    }
    const scale = Math.max(...Array.from(b, Math.abs), ...ms.flatMap((x) => Array.from(x, Math.abs)));
    s.elements += n;
    if (dtype === 'F32') {
      const values = decodeArray(bytes, 'F32', n);
      for (let i = 0; i < n; i++) {
        const err = Math.abs(values[i]! - want[i]!);
        if (values[i] === Math.fround(want[i]!)) s.exact++;
        if (Math.abs(want[i]!) >= 0.01 * scale) s.worstRel = Math.max(s.worstRel, err / Math.abs(want[i]!));
        s.worstAbs = Math.max(s.worstAbs, err / scale);
        if (!(err <= 1e-6 * Math.abs(want[i]!) + 1e-7 * scale) && problems.length < 8) {
          problems.push(`${ref.storedName}[${i}] got ${values[i]} want ${want[i]} err ${err.toExponential(2)}`);
        }
      }
    } else {
      const bits = elementBits(bytes, dtype, n);
      const enc = dtype === 'F16' ? numberToF16Bits : numberToBf16Bits;
      for (let i = 0; i < n; i++) {
        const d = Math.abs(ordered16(bits[i]!) - ordered16(enc(want[i]!)));
        if (d === 0) s.exact++;
        s.worstUlp = Math.max(s.worstUlp, d);
        if (d > 1 && problems.length < 8) problems.push(`${ref.storedName}[${i}] got 0x${bits[i]!.toString(16)} want 0x${enc(want[i]!).toString(16)} (${want[i]}) ${d} ulps`);
      }
    }
  }
  expect(problems).toEqual([]);
  return s;
}

function report(name: string, s: CaseStats, dtype: string): void {
  const share = `${((100 * s.exact) / Math.max(1, s.elements)).toFixed(2)}% exact`;
  const err = dtype === 'F32' ? `max rel err ${s.worstRel.toExponential(2)} (|ref| >= 1% of max|input|), max abs err ${s.worstAbs.toExponential(2)}·max|input|` : `max ${s.worstUlp} ulp`;
  stats.push(`  ${name.padEnd(44)} ${s.merged} merged + ${s.copied} copied, ${s.elements} elements, ${dtype}: ${err}, ${share}${s.ambiguous ? `, ${s.ambiguous} coin-flip signs (either answer accepted)` : ''}`);
}

/** Runs `dem merge` with CLI options and verifies the export against the recipe it wrote. */
async function mergeAndVerify(name: string, args: string[]): Promise<{ dir: string; recipe: MergeRecipe; stats: CaseStats }> {
  const dir = outDir();
  await dem(...args, '--out', dir);
  const recipe = parseRecipe(JSON.parse(readFileSync(join(dir, 'dem-recipe.json'), 'utf8')), 'dem-recipe.json');
  const s = await verify(dir, recipe, {});
  const header = (await open(dir)).tensors;
  const dtype = [...new Set([...header.values()].filter((t) => t.kind === 'param').map((t) => t.dtype))].join('/');
  report(name, s, dtype);
  return { dir, recipe, stats: s };
}

const gpt2 = (...weights: number[]): string[] => ['--base', GPT2, ...weights.map((w, i) => `--model=${GPT2_FT[i]}:${w}`)];
const llama = (...weights: number[]): string[] => ['--base', LLAMA, ...weights.map((w, i) => `--model=${LLAMA_FT[i]}:${w}`)];

describe('dem merge: every method against the float64 reference', () => {
  it('task_arithmetic (DEM), GPT-2 F32, 3 fine-tunes, negative weight, lambda', async () => {
    await mergeAndVerify('task_arithmetic gpt2 F32', [...gpt2(0.5, -0.3, 1.2), '--lambda', '0.8']);
  });
  it('linear, GPT-2 F32 and Llama BF16', async () => {
    await mergeAndVerify('linear gpt2 F32', [...gpt2(1, 2, 0.5), '--method', 'linear']);
    await mergeAndVerify('linear llama BF16', [...llama(0.7, 0.3), '--method', 'linear']);
  });
  it('ties, Llama BF16 (sharded) and GPT-2 F32', async () => {
    await mergeAndVerify('ties llama BF16', [...llama(0.61, 0.93), '--method', 'ties', '--density', '0.5']);
    await mergeAndVerify('ties gpt2 F32', [...gpt2(0.6, 0.9, -0.4), '--method', 'ties', '--density', '0.3']);
  });
  it('dare_linear and dare_ties', async () => {
    await mergeAndVerify('dare_linear gpt2 F32', [...gpt2(0.5, 0.8, 0.4), '--method', 'dare_linear', '--density', '0.6', '--seed', '42']);
    await mergeAndVerify('dare_ties llama BF16', [...llama(0.53, 0.81), '--method', 'dare_ties', '--density', '0.7', '--seed', '7']);
    // --rescale takes a name: l1 (mergekit's rescale: true) reaches the recipe and the kernels.
    const l1 = await mergeAndVerify('dare_linear llama BF16 rescale l1', [...llama(0.53, 0.81), '--method', 'dare_linear', '--density', '0.6', '--seed', '3', '--rescale', 'l1']);
    expect(l1.recipe.parameters.rescale).toBe('l1');
    await expect(dem(...llama(0.5, 0.5), '--method', 'dare_linear', '--density', '0.6', '--rescale', 'bogus', '--out', outDir())).rejects.toThrow(/rescale.*expected one of l1, density, none/);
  });
  it('breadcrumbs, GPT-2 F32 and Llama BF16; breadcrumbs_ties', async () => {
    await mergeAndVerify('breadcrumbs gpt2 F32', [...gpt2(0.5, 0.8, 0.4), '--method', 'breadcrumbs', '--density', '0.8', '--gamma', '0.05']);
    await mergeAndVerify('breadcrumbs llama BF16', [...llama(0.53, 0.81), '--method', 'breadcrumbs', '--density', '0.9', '--gamma', '0.02']);
    await mergeAndVerify('breadcrumbs_ties gpt2 F32', [...gpt2(0.5, 0.8, -0.4), '--method', 'breadcrumbs_ties', '--density', '0.8', '--gamma', '0.05']);
  });
  it('slerp, GPT-2 F32 and Llama BF16', async () => {
    await mergeAndVerify('slerp gpt2 F32', ['--base', GPT2, '--model', GPT2_FT[0]!, '--method', 'slerp', '--t', '0.3']);
    await mergeAndVerify('slerp llama BF16', ['--base', LLAMA, '--model', LLAMA_FT[1]!, '--method', 'slerp', '--t', '0.6']);
  });
  it('model_stock from bare --model folders (it takes no weights), GPT-2 F32 and Llama BF16', async () => {
    await mergeAndVerify('model_stock gpt2 F32', ['--base', GPT2, ...GPT2_FT.flatMap((f) => ['--model', f]), '--method', 'model_stock']);
    await mergeAndVerify('model_stock llama BF16', ['--base', LLAMA, ...LLAMA_FT.flatMap((f) => ['--model', f]), '--method', 'model_stock']);
    await expect(dem('--base', GPT2, ...GPT2_FT.map((f) => `--model=${f}:0.5`), '--method', 'model_stock', '--out', outDir())).rejects.toThrow(/model_stock does not take `weight`/);
  });

  it('per-layer gradient weights and a filter override from a mergekit YAML (--config)', async () => {
    // Llama: self_attn tensors get 0.5 for ft-a; everything else the gradient [0.2, 1.0] over depth.
    const yml = join(tmp, 'gradient.yml');
    writeFileSync(
      yml,
      [
        'merge_method: task_arithmetic',
        `base_model: ${LLAMA}`,
        'models:',
        `  - model: ${LLAMA_FT[0]}`,
        '    parameters:',
        '      weight:',
        '        - filter: self_attn',
        '          value: 0.5',
        '        - value: [0.2, 1.0]',
        `  - model: ${LLAMA_FT[1]}`,
        '    parameters:',
        '      weight: [1.0, -0.4]',
        'parameters:',
        '  lambda: 0.9',
        '',
      ].join('\n'),
    );
    const recipe = parseMergekitYaml(readFileSync(yml, 'utf8'), yml);
    // The schedule really varies per tensor: three different ω for ft-a across the model.
    const numLayers = 2;
    const w = (name: string, layer: number | null): number => resolveTensorParams(recipe, name, layer, numLayers).weights[0]!;
    expect([w('model.layers.0.self_attn.q_proj.weight', 0), w('model.layers.0.mlp.up_proj.weight', 0), w('model.layers.1.mlp.up_proj.weight', 1)]).toEqual([0.5, 0.2, 1]);
    for (const [dtype, flag] of [['BF16', []], ['F32', ['--dtype', 'f32']], ['F16', ['--dtype', 'f16']]] as const) {
      const dir = outDir();
      await dem('--config', yml, ...flag, '--out', dir);
      const r = parseRecipe(JSON.parse(readFileSync(join(dir, 'dem-recipe.json'), 'utf8')));
      report(`task_arithmetic gradient+filter llama → ${dtype}`, await verify(dir, r, {}), dtype);
    }
    // GPT-2: filter 'attn' (c_attn, c_proj of attention) and a global gradient for the rest.
    const yml2 = join(tmp, 'gradient-gpt2.yml');
    writeFileSync(
      yml2,
      [
        'merge_method: ties',
        `base_model: ${GPT2}`,
        'models:',
        ...GPT2_FT.map((p, i) => `  - model: ${p}\n    parameters:\n      weight: ${[0.4, 0.7, 1.0][i]}`),
        'parameters:',
        '  density:',
        '    - filter: attn',
        '      value: 0.3',
        '    - value: [0.2, 1.0]',
        '  weight: 1',
        '',
      ].join('\n'),
    );
    const dir = outDir();
    await dem('--config', yml2, '--out', dir);
    report('ties gpt2 density gradient+filter F32', await verify(dir, parseMergekitYaml(readFileSync(yml2, 'utf8')), {}), 'F32');
  });

  it('--dtype conversions: F32 → F16/BF16, BF16 → F32/F16', async () => {
    await mergeAndVerify('task_arithmetic gpt2 → F16', [...gpt2(0.5, 0.4, 0.3), '--dtype', 'f16']);
    await mergeAndVerify('task_arithmetic gpt2 → BF16', [...gpt2(0.5, 0.4, 0.3), '--dtype', 'bf16']);
    const { dir } = await mergeAndVerify('task_arithmetic llama → F32', [...llama(0.5, 0.4), '--dtype', 'f32']);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).torch_dtype).toBe('float32');
    await mergeAndVerify('ties llama → F16', [...llama(0.53, 0.41), '--method', 'ties', '--dtype', 'f16']);
  });
});

/**
 * mergekit's own examples/ (the `models:` form), with only the model ids replaced by fixture
 * folders (src/cli/testdata/mergekit-examples, each file names its original): run with
 * `dem merge CONFIG OUT` from the repository root as mergekit would be, every tensor checked
 * against the float64 reference and, where flags can say the same merge, against the bytes the
 * flags write. Examples in forms the studio does not take are refused by name.
 */
describe("dem merge CONFIG OUT on mergekit's examples", () => {
  const EXAMPLES = 'src/cli/testdata/mergekit-examples';
  const example = (name: string): string => join(EXAMPLES, name);
  const shards = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();
  /** Runs the example as `dem merge CONFIG OUT`; verifies it against the float64 reference; returns the folder. */
  async function runExample(name: string, dtype: string): Promise<{ dir: string; recipe: MergeRecipe }> {
    const dir = outDir();
    await dem(example(name), dir);
    const recipe = parseMergekitYaml(readFileSync(example(name), 'utf8'), name);
    report(`mergekit examples/${name}`, await verify(dir, recipe, {}), dtype);
    return { dir, recipe };
  }
  /** The same merge through flags writes the same bytes. */
  async function sameAsFlags(dir: string, flags: string[]): Promise<void> {
    const again = outDir();
    await dem(...flags, '--out', again);
    expect(shards(again)).toEqual(shards(dir));
    for (const f of shards(dir)) expect(readFileSync(join(again, f)).equals(readFileSync(join(dir, f))), f).toBe(true);
  }
  const rel = (p: string): string => p.slice(resolve('.').length + 1);

  it('linear.yml (no base_model): float64 reference; the bytes of --method linear with the first model as base', async () => {
    const { dir, recipe } = await runExample('linear.yml', 'F16');
    expect(recipe.base).toBe('e2e/fixtures/tiny-gpt2-ft-a');
    const ft = GPT2_FT.map(rel);
    await sameAsFlags(dir, ['--method', 'linear', '--base', ft[0]!, '--model', `${ft[0]}:1.0`, '--model', `${ft[1]}:0.3`, '--model', `${ft[2]}:0.5`, '--dtype', 'f16']);
  });

  it('bio-merge.yml (ties, normalize: false, int8_mask): float64 reference; the bytes of --density 0.5 --no-normalize', async () => {
    const { dir, recipe } = await runExample('bio-merge.yml', 'F16');
    expect(recipe.parameters.normalize).toBe(false);
    const ft = LLAMA_FT.map(rel);
    await sameAsFlags(dir, ['--method', 'ties', '--base', rel(LLAMA), '--model', `${ft[0]}:0.5`, '--model', `${ft[1]}:0.5`, '--density', '0.5', '--no-normalize', '--dtype', 'f16']);
    // --normalize (TIES's default) is another merge: the flag reaches it.
    const normalized = outDir();
    await dem('--method', 'ties', '--base', rel(LLAMA), '--model', `${ft[0]}:0.5`, '--model', `${ft[1]}:0.5`, '--density', '0.5', '--dtype', 'f16', '--out', normalized);
    expect(readFileSync(join(normalized, shards(dir)[0]!)).equals(readFileSync(join(dir, shards(dir)[0]!)))).toBe(false);
  });

  it('ties.yml (density and weight gradients, an mlp filter; flags cannot say per-model gradients): float64 reference', async () => {
    const { dir, recipe } = await runExample('ties.yml', 'F16');
    // The example's parameters reached the recipe dem wrote (int8_mask is storage only, dropped).
    const written = parseRecipe(JSON.parse(readFileSync(join(dir, 'dem-recipe.json'), 'utf8')), 'dem-recipe.json');
    expect(canonicalRecipe(written)).toEqual(canonicalRecipe(recipe));
    expect(written.models.map((m) => m.parameters)).toEqual([
      { density: [1, 0.7, 0.1], weight: 1 },
      { density: 0.5, weight: [0, 0.3, 0.7, 1] },
      { density: 0.33, weight: [{ filter: 'mlp', value: 0.5 }, { value: 0 }] },
    ]);
    expect([written.method, written.parameters.normalize, written.dtype]).toEqual(['ties', true, 'float16']);
    // The filter and the gradients vary per tensor: ft-c's ω is 0.5 on an MLP tensor, 0 elsewhere.
    const w = (name: string, layer: number): number[] => resolveTensorParams(recipe, name, layer, 2).weights;
    expect(w('h.1.mlp.c_fc.weight', 1)[2]).toBe(0.5);
    expect(w('h.1.attn.c_attn.weight', 1)[2]).toBe(0);
  });

  it('gradient-slerp in the models: form its own comment gives (t gradients per filter): float64 reference', async () => {
    const { recipe } = await runExample('gradient-slerp-models.yml', 'F16');
    const t = (name: string, layer: number): unknown => resolveTensorParams(recipe, name, layer, 2).params.t;
    expect([t('model.layers.0.self_attn.q_proj.weight', 0), t('model.layers.1.self_attn.q_proj.weight', 1), t('model.layers.0.mlp.up_proj.weight', 0), t('model.norm.weight', 1)]).toEqual([0, 1, 1, 0.5]);
  });

  it('refused by name, exit 1: arcee_fusion.yml (method), gradient-slerp.yml and orcamini-platy-44layer.yml (slices:)', async () => {
    const refusals = {
      'arcee_fusion.yml': "dem: error: arcee_fusion.yml: merge_method: mergekit's 'arcee_fusion' is not supported by the studio; it supports",
      'gradient-slerp.yml': 'dem: error: gradient-slerp.yml: slices: only `models:` configs are supported; `slices:` (layer ranges / frankenmerges) is not: list whole models under `models:`',
      'orcamini-platy-44layer.yml': 'dem: error: orcamini-platy-44layer.yml: slices: only `models:` configs are supported',
    };
    for (const [name, message] of Object.entries(refusals)) {
      const lines: string[] = [];
      const spy = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
      const out = outDir();
      try {
        expect(await main(['merge', '--quiet', example(name), out]), name).toBe(1);
      } finally {
        spy.mockRestore();
      }
      expect(lines.join('\n'), name).toContain(message);
      expect(existsSync(out), name).toBe(false);
    }
  });
});

describe('dem merge: invariants at checkpoint level', () => {
  /**
   * Elements whose bits differ between the export and `other`, over merged tensors, and the
   * worst |out − other| / max(|θ_base|, |other|) of those (`base`: the merge's base folder).
   */
  async function differingElements(dir: string, other: string, baseDir = other): Promise<{ differ: number; total: number; worst: number }> {
    const a = await open(dir);
    const b = await open(other);
    const base = await open(baseDir);
    let differ = 0;
    let total = 0;
    let worst = 0;
    for (const t of a.tensors.values()) {
      const x = await a.read(t.name);
      const y = await b.read(t.name);
      expect(t.dtype).toBe(b.tensors.get(t.name)!.dtype);
      const n = t.shape.reduce((p, q) => p * q, 1);
      if (!isFloatDType(t.dtype)) {
        expect(Buffer.from(x).equals(Buffer.from(y))).toBe(true);
        continue;
      }
      const dt = t.dtype as FloatDType;
      const [xb, yb] = [elementBits(x, dt, n), elementBits(y, dt, n)];
      const [xv, yv] = [decodeArray(x, dt, n), decodeArray(y, dt, n)];
      const bv = decodeArray(await base.read(t.name), base.tensors.get(t.name)!.dtype as FloatDType, n);
      for (let i = 0; i < n; i++) {
        if (xb[i] === yb[i]) continue;
        differ++;
        worst = Math.max(worst, Math.abs(xv[i]! - yv[i]!) / Math.max(Math.abs(bv[i]!), Math.abs(yv[i]!)));
      }
      total += n;
    }
    return { differ, total, worst };
  }

  it('all ω = 0 gives the base bit for bit (every method with weights, F32 and BF16)', async () => {
    for (const method of ['task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'breadcrumbs']) {
      const dir = outDir();
      // ties normalises by Σ of agreeing weights (0 → 1), so the merged Δ is 0 everywhere too.
      await dem('--base', GPT2, ...GPT2_FT.map((p) => `--model=${p}:0`), '--method', method, '--out', dir);
      expect(readFileSync(join(dir, 'model.safetensors')).equals(readFileSync(join(GPT2, 'model.safetensors'))), `${method} gpt2`).toBe(true);
      const dir2 = outDir();
      await dem(...llama(0, 0), '--method', method, '--out', dir2);
      expect((await differingElements(dir2, LLAMA)).differ, `${method} llama`).toBe(0);
    }
  });

  it('ω = e_i gives fine-tune i (task_arithmetic): measured', async () => {
    const lines: string[] = [];
    for (const [i, ft] of GPT2_FT.entries()) {
      const dir = outDir();
      await dem(...gpt2(...GPT2_FT.map((_, j) => (j === i ? 1 : 0))), '--out', dir);
      const d = await differingElements(dir, ft, GPT2);
      lines.push(`gpt2 F32 e_${i}: ${d.differ}/${d.total} elements differ, by at most ${(d.worst * 2 ** 24).toFixed(2)}·2^-24·max(|θ|, |θ_i|)`);
      // θ + fl(θ_i − θ) in f32 is θ_i exactly whenever θ_i − θ is exact (Sterbenz: θ_i/2 <= θ <= 2θ_i,
      // true for most elements); elsewhere the rounding of Δ and of the sum, each <= 2^-24·2·max(|θ|, |θ_i|).
      expect(d.differ).toBeLessThan(d.total * 0.05);
      expect(d.worst).toBeLessThanOrEqual(2 ** -22);
    }
    for (const [i, ft] of LLAMA_FT.entries()) {
      const dir = outDir();
      await dem(...llama(...LLAMA_FT.map((_, j) => (j === i ? 1 : 0))), '--out', dir);
      const d = await differingElements(dir, ft, LLAMA);
      lines.push(`llama BF16 e_${i}: ${d.differ}/${d.total} elements differ`);
      // BF16 values are exact in f32 and so is their difference (exponents within 16): bit for bit.
      expect(d.differ).toBe(0);
    }
    stats.push(`  invariant ω = e_i: ${lines.join('; ')}`);
  });

  it('GPT-2 attn.bias / masked_bias buffers are copied bit for bit, whatever the output dtype', async () => {
    const dir = outDir();
    await dem(...gpt2(0.5, 0.5, 0.5), '--dtype', 'bf16', '--out', dir);
    const out = await open(dir);
    const base = await open(GPT2);
    const buffers = [...base.tensors.values()].filter((t) => t.kind !== 'param');
    expect(buffers.map((t) => t.name)).toContain('h.0.attn.bias');
    for (const t of buffers) {
      expect(out.tensors.get(t.name)!.dtype).toBe(t.dtype);
      expect(Buffer.from(await out.read(t.name)).equals(Buffer.from(await base.read(t.name))), t.name).toBe(true);
    }
  });

  it('DARE: the same seed gives the same bytes, another seed different ones', async () => {
    const run = async (seed: string): Promise<Buffer> => {
      const dir = outDir();
      await dem(...gpt2(0.5, 0.8, 0.4), '--method', 'dare_ties', '--density', '0.5', '--seed', seed, '--out', dir);
      return readFileSync(join(dir, 'model.safetensors'));
    };
    const a = await run('42');
    expect(a.equals(await run('42'))).toBe(true);
    expect(a.equals(await run('43'))).toBe(false);
  });
});

describe('dem merge: export files', () => {
  it('dem-recipe.json and mergekit_config.yml parse back to the recipe, and --config reproduces the bytes', async () => {
    const { dir, recipe } = await mergeAndVerify('breadcrumbs gpt2 (round trip)', [...gpt2(0.5, -0.2, 0.9), '--method', 'breadcrumbs', '--density', '0.8', '--gamma', '0.05', '--lambda', '1.1']);
    const yaml = parseMergekitYaml(readFileSync(join(dir, 'mergekit_config.yml'), 'utf8'), 'mergekit_config.yml');
    // The YAML names the folders relative to itself (conventions.test.ts) and always states the
    // output dtype (the base's, float32, when the recipe names none).
    const absolute = { ...yaml, base: resolve(dir, yaml.base), models: yaml.models.map((m) => ({ ...m, model: resolve(dir, m.model) })) };
    expect(canonicalRecipe(absolute)).toEqual({ ...canonicalRecipe(recipe), dtype: 'float32' });
    expect(recipe.models.map((m) => m.parameters.weight)).toEqual([0.5, -0.2, 0.9]);
    const again = outDir();
    await dem('--config', join(dir, 'mergekit_config.yml'), '--out', again);
    expect(readFileSync(join(again, 'model.safetensors')).equals(readFileSync(join(dir, 'model.safetensors')))).toBe(true);
    expect(readFileSync(join(again, 'config.json'), 'utf8')).toBe(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(readFileSync(join(again, 'tokenizer.json')).equals(readFileSync(join(GPT2, 'tokenizer.json')))).toBe(true);
  });

  it('--max-shard-size writes shards + index that read back equal to the single-file export', async () => {
    const single = outDir();
    const sharded = outDir();
    await dem(...llama(0.5, 0.4), '--dtype', 'f32', '--out', single);
    await dem(...llama(0.5, 0.4), '--dtype', 'f32', '--max-shard-size', '40000', '--out', sharded);
    const files = readdirSync(sharded).filter((f) => f.endsWith('.safetensors'));
    expect(files.length).toBeGreaterThan(2);
    expect(existsSync(join(sharded, 'model.safetensors.index.json'))).toBe(true);
    const a = await open(single);
    const b = await open(sharded);
    expect(b.sharded).toBe(true);
    expect([...b.tensors.keys()]).toEqual([...a.tensors.keys()]);
    for (const t of a.tensors.values()) {
      expect(b.tensors.get(t.name)!.dtype).toBe(t.dtype);
      expect(Buffer.from(await b.read(t.name)).equals(Buffer.from(await a.read(t.name))), t.name).toBe(true);
    }
  });
});

describe('dem merge: options and help come from the method registry', () => {
  it('--help names every registered method and has a flag for every parameter besides ω', async () => {
    const logged: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logged.push(a.map(String).join(' ')));
    try {
      expect(await runMerge(['--help'])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    const help = logged.join('\n');
    for (const m of METHODS) expect(help).toContain(m.name);
    for (const p of allParams().filter((p) => p.name !== WEIGHT)) {
      expect(help).toMatch(new RegExp(`--${p.name}\\b`));
      expect(MERGE_OPTIONS[p.name], p.name).toBeDefined();
    }
    expect(USAGE).toContain(methodNames().slice(-1)[0]);
  });
});

describe('dem merge: bad input', () => {
  it('a Llama fine-tune on a GPT-2 base: IncompatibleCheckpointError listing the mismatches', async () => {
    const run = runMerge(['--quiet', '--base', GPT2, '--model', LLAMA_FT[0]!, '--out', outDir()]);
    const error = await run.then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(IncompatibleCheckpointError);
    const message = (error as Error).message;
    expect(message).toMatch(/model_type llama .* differs from base 'tiny-gpt2'/);
    expect(message).toContain('[wte.weight]: missing param tensor');
    // Every mismatch on one line (the CLI prints errors as one line), separated by '; '.
    expect(message).not.toContain('\n');
    expect(message.split('; ').length).toBeGreaterThan(10);
  });

  it('a truncated fine-tune: SafetensorsError naming the file (folder included)', async () => {
    const broken = join(tmp, 'truncated-ft');
    cpSync(GPT2_FT[1]!, broken, { recursive: true });
    truncateSync(join(broken, 'model.safetensors'), 150_000);
    const out = outDir();
    const error = await runMerge(['--quiet', '--base', GPT2, '--model', GPT2_FT[0]!, '--model', broken, '--out', out]).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(SafetensorsError);
    expect((error as SafetensorsError).file).toBe(join(broken, 'model.safetensors'));
    expect((error as Error).message).toContain(join(broken, 'model.safetensors'));
    expect(existsSync(out)).toBe(false);
  });
});
