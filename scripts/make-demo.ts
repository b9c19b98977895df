/**
 * `npm run make-demo`: builds the studio's demo workspace in public/demo/ from scratch.
 *
 * 1. Four distributions from offline corpora (scripts/demo/corpora.ts), split by document into
 *    training text and held-out validation text (public/demo/validation/*.txt).
 * 2. In headless Chromium, through the studio's own training Worker (onnxruntime-web training
 *    wasm, multi-threaded under cross-origin isolation): a byte-level GPT-2 base trained from a
 *    fresh initialisation on the interleaved mixture; then one gentle fine-tune of the base per
 *    distribution; then the data-mixing baseline: the base trained on the mixture for as many
 *    steps as all fine-tunes together, at the fine-tunes' settings.
 * 3. Held-out perplexity with `dem ppl` (the engine's GPU forward pass through Dawn in Node) for
 *    the base, every fine-tune, the mixing baseline, the DEM merge with all weights 1 and a small
 *    grid of weights; everything recorded in public/demo/manifest.json.
 *
 * Fails if a fine-tune does not beat the base on its own distribution, or if public/demo grows
 * past 30 MB. Options: --base-steps N, --ft-steps N, --port N, --quick (a smoke run, not for
 * committing).
 */
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_METHOD, formatBytes, loadTokenizer, parseRecipe, Workspace, type GpuRuntime, type MergeRecipe, type TrainSettings } from '../src/engine/index.ts';
import { folderFileSet } from '../src/node/files.ts';
import { cpuScorer, openFolder, taskArithmetic, weightsOf } from './demo/cpuPpl.ts';
import { createNodeRuntime } from '../src/node/gpu.ts';
import { startHarness } from './demo/browser.ts';
import { interleave, loadDistributions, type Distribution } from './demo/corpora.ts';
import { configJson, initCheckpoint, paramCount, type Gpt2Shape } from './demo/init.ts';
import type { PageTrainResult } from './demo/page.ts';
import { EOT, EOT_ID } from './demo/tokenizer.ts';
import { makeDemoTasks } from './demo/tasks.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const OUT = join(ROOT, 'public', 'demo');
const MAX_BYTES = 30 * 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    'base-steps': { type: 'string' },
    'ft-steps': { type: 'string' },
    port: { type: 'string' },
    quick: { type: 'boolean' },
  },
});
const quick = args.quick ?? false;

// ---- settings (recorded in the manifest) ----
const SHAPE: Gpt2Shape = { family: 'gpt2', L: 2, C: 64, NH: 4, P: 128 };
const INIT_SEED = 20240617;
const CORPUS = quick ? { trainBytes: 60_000, validationBytes: 1500 } : { trainBytes: 300_000, validationBytes: 4000 };
const B = 8;
const T = 128;
const BASE: TrainSettings = {
  steps: Number(args['base-steps'] ?? (quick ? 60 : 1500)),
  batchSize: B,
  seqLen: T,
  lr: 2e-3,
  warmupSteps: quick ? 5 : 100,
  weightDecay: 0.01,
  minLrRatio: 0.1,
  trainable: { kind: 'all' },
  heldOutFraction: 0.02,
  evalEvery: quick ? 30 : 250,
  snapshotEvery: 0,
  seed: 1,
};
// Gentle fine-tunes: distribution vectors must stay in the base's linear regime for their sum to help.
const FT: TrainSettings = {
  ...BASE,
  steps: Number(args['ft-steps'] ?? (quick ? 10 : 150)),
  lr: 3e-4,
  warmupSteps: quick ? 1 : 10,
  weightDecay: 0,
  evalEvery: quick ? 5 : 50,
};
// Grid of DEM weights: every ω_i in GRID (the all-ones merge is one of them).
const GRID = [0.5, 1];
// ...and the all-ones direction scaled by these λ.
const SCALES = [0.25, 0.75, 1.25, 1.5];

const started = Date.now();
const log = (line: string): void => {
  const s = ((Date.now() - started) / 1000).toFixed(0).padStart(4);
  console.log(`[${s}s] ${line}`);
};

function b64(files: ReadonlyMap<string, Uint8Array>): Record<string, string> {
  return Object.fromEntries([...files].map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
}

function writeFolder(name: string, files: Record<string, string>): string {
  const dir = join(OUT, name);
  mkdirSync(dir, { recursive: true });
  for (const [path, data] of Object.entries(files)) writeFileSync(join(dir, path), Buffer.from(data, 'base64'));
  return dir;
}

function folderBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? folderBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}

interface RunRecord {
  name: string;
  path: string;
  role: 'base' | 'fine-tune' | 'mixing';
  distribution?: string;
  startsFrom: string;
  trainedOn: string;
  settings: TrainSettings;
  tokensSeen: number;
  seconds: number;
  tokensPerSecond: number;
  trainLoss: { first: number; last10Mean: number };
  heldOut: { step: number; loss: number }[];
}

function record(name: string, role: RunRecord['role'], startsFrom: string, trainedOn: string, settings: TrainSettings, r: PageTrainResult, distribution?: string): RunRecord {
  const last = r.losses.slice(-10);
  return {
    name,
    path: `${name}/`,
    role,
    ...(distribution ? { distribution } : {}),
    startsFrom,
    trainedOn,
    settings,
    tokensSeen: settings.steps * settings.batchSize * settings.seqLen,
    seconds: Number(r.seconds.toFixed(1)),
    tokensPerSecond: Math.round(r.tokensPerSecond),
    trainLoss: { first: r.losses[0]!, last10Mean: last.reduce((a, b) => a + b, 0) / last.length },
    heldOut: r.heldOut,
  };
}

type PplRow = Record<string, number>;

async function main(): Promise<void> {
  const port = Number(args.port ?? 5198);
  log(`make-demo${quick ? ' (quick smoke run: do not commit)' : ''}: GPT-2 L ${SHAPE.L}, C ${SHAPE.C}, ${SHAPE.NH} heads, context ${SHAPE.P}, ${paramCount(SHAPE)} parameters`);

  // ---- 1. data ----
  const dists: Distribution[] = loadDistributions(CORPUS);
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(join(OUT, 'validation'), { recursive: true });
  for (const d of dists) {
    writeFileSync(join(OUT, 'validation', `${d.id}.txt`), d.validation);
    log(`${d.id}: ${Buffer.byteLength(d.train)} training bytes (${d.split.train}), ${Buffer.byteLength(d.validation)} validation bytes (${d.split.validation})`);
  }
  // Chunks of 2 KB interleave the four, so every part of the stream mixes them equally.
  const mixture = interleave(dists.map((d) => d.train), 2048);

  // ---- 2. training in Chromium ----
  const runs: RunRecord[] = [];
  const harness = await startHarness(port, log);
  const browser = { version: harness.browserVersion, crossOriginIsolated: harness.isolated, hardwareConcurrency: harness.cores, ortThreadWorkers: 0 };
  log(`Chromium ${harness.browserVersion}: crossOriginIsolated ${harness.isolated}, ${harness.cores} cores`);
  const trainStart = Date.now();
  try {
    const init = initCheckpoint(SHAPE, INIT_SEED);
    log(`base: ${BASE.steps} steps of ${B} x ${T} on the mixture, lr ${BASE.lr} from a fresh initialisation (seed ${INIT_SEED})`);
    const base = await harness.train({ name: 'base', files: b64(init), text: mixture, settings: BASE });
    browser.ortThreadWorkers = harness.ortThreadWorkers();
    writeFolder('base', base.files);
    runs.push(record('base', 'base', `fresh initialisation (seed ${INIT_SEED})`, 'mixture of all four distributions (interleaved 2 KB chunks)', BASE, base));
    log(`base done in ${base.seconds.toFixed(0)} s, ${base.tokensPerSecond.toFixed(0)} tok/s, held-out ${base.heldOut.at(-1)?.loss.toFixed(3)}`);

    for (const [i, d] of dists.entries()) {
      const settings = { ...FT, seed: 100 + i };
      const ft = await harness.train({ name: `ft-${d.id}`, files: base.files, text: d.train, settings });
      writeFolder(`ft-${d.id}`, ft.files);
      runs.push(record(`ft-${d.id}`, 'fine-tune', 'base', d.id, settings, ft, d.id));
      log(`ft-${d.id} done in ${ft.seconds.toFixed(0)} s, held-out ${ft.heldOut[0]?.loss.toFixed(3)} -> ${ft.heldOut.at(-1)?.loss.toFixed(3)}`);
    }

    const mixSettings = { ...FT, steps: FT.steps * dists.length, evalEvery: FT.evalEvery * dists.length, seed: 200 };
    const mix = await harness.train({ name: 'mixing', files: base.files, text: mixture, settings: mixSettings });
    writeFolder('mixing', mix.files);
    runs.push(record('mixing', 'mixing', 'base', 'mixture of all four distributions (interleaved 2 KB chunks)', mixSettings, mix));
    log(`mixing done in ${mix.seconds.toFixed(0)} s`);
  } finally {
    await harness.close();
  }
  const trainSeconds = (Date.now() - trainStart) / 1000;

  // ---- 3. held-out perplexity: every candidate on the CPU, cross-checked with `dem ppl` ----
  const evalStart = Date.now();
  const baseCkpt = await openFolder(join(OUT, 'base'));
  const tokenizer = await loadTokenizer(baseCkpt.tokenizerJson);
  const valIds = dists.map((d) => tokenizer.encode(d.validation));
  const scorer = await cpuScorer(baseCkpt.spec, (n) => baseCkpt.tensors.has(n), T);
  const rowOf = (ppls: number[]): PplRow => Object.fromEntries(dists.map((d, i) => [d.id, ppls[i]!]));
  const mean = (r: PplRow): number => Object.values(r).reduce((a, b) => a + b, 0) / Object.values(r).length;
  const models: Record<string, PplRow> = {};
  const weights = new Map<string, Map<string, Float32Array>>();
  const rt: GpuRuntime = await createNodeRuntime({ label: 'make-demo' });
  try {
    for (const name of ['base', ...dists.map((d) => `ft-${d.id}`), 'mixing']) {
      const w = await weightsOf(await openFolder(join(OUT, name)), scorer.params);
      weights.set(name, w);
      models[name] = rowOf(await scorer.perplexities(w, valIds));
      log(`ppl ${name}: ${Object.entries(models[name]).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
    }
    const fts = dists.map((d) => weights.get(`ft-${d.id}`)!);
    const merges: { weights: Record<string, number>; ppl: PplRow; mean: number }[] = [];
    const combos: number[][] = [[]];
    for (let i = 0; i < dists.length; i++) combos.splice(0, combos.length, ...combos.flatMap((c) => GRID.map((w) => [...c, w])));
    for (const lam of SCALES) combos.push(dists.map(() => lam));
    for (const ws of combos) {
      const row = rowOf(await scorer.perplexities(taskArithmetic(weights.get('base')!, fts, ws), valIds));
      merges.push({ weights: Object.fromEntries(dists.map((d, i) => [d.id, ws[i]!])), ppl: row, mean: mean(row) });
      log(`ppl DEM ω = (${ws.join(', ')}): mean ${mean(row).toFixed(3)}`);
    }
    await scorer.release();

    // The studio's own numbers: the engine's Workspace (GPU forward pass, Dawn on SwiftShader
    // here, as `dem ppl` runs it) on one validation text, for the base and the all-ones merge,
    // must agree with the CPU evaluator.
    const checkText = dists[0]!;
    const ws = new Workspace({ runtime: async () => rt });
    for (const name of ['base', ...dists.map((d) => `ft-${d.id}`)]) await ws.open(name, name, await folderFileSet(join(OUT, name)));
    await ws.addText(checkText.id, `validation/${checkText.id}.txt`, checkText.validation, 'base');
    const gpuPpl = async (recipe: MergeRecipe): Promise<number> => (await ws.evaluate({ recipe, texts: [checkText.id], context: T })).texts[0]!.ppl;
    const gpuBase = await gpuPpl({ version: 1, method: DEFAULT_METHOD, base: 'base', models: [], parameters: {} });
    const gpuMerge = await gpuPpl(parseRecipe({ version: 1, method: DEFAULT_METHOD, base: 'base', models: dists.map((d) => ({ model: `ft-${d.id}`, parameters: { weight: 1 } })) }));
    const cpuMerge = merges.find((m) => Object.values(m.weights).every((w) => w === 1))!.ppl[checkText.id]!;
    const crossCheck = {
      text: `validation/${checkText.id}.txt`,
      base: { demPplGpu: gpuBase, cpu: models.base![checkText.id]!, relativeDifference: Math.abs(gpuBase / models.base![checkText.id]! - 1) },
      demAllOnes: { demPplGpu: gpuMerge, cpu: cpuMerge, relativeDifference: Math.abs(gpuMerge / cpuMerge - 1) },
    };
    log(`cross-check on ${checkText.id}: dem ppl (GPU) base ${gpuBase.toFixed(4)} vs CPU ${models.base![checkText.id]!.toFixed(4)}; DEM ω=1 ${gpuMerge.toFixed(4)} vs ${cpuMerge.toFixed(4)}`);
    const evalSeconds = (Date.now() - evalStart) / 1000;
    const ones = merges.find((m) => Object.values(m.weights).every((w) => w === 1))!;
    const best = merges.reduce((a, b) => (b.mean < a.mean ? b : a));

    // ---- 4. manifest ----
    const failures = dists.filter((d) => !(models[`ft-${d.id}`]![d.id]! < models.base![d.id]!)).map((d) => d.id);
    const comparison = {
      note:
        'Mean of the four held-out perplexities (lower is better). The grid is selected on these same validation texts, as DEM selects coefficients by validation perplexity; there is no separate test split.',
      base: mean(models.base!),
      mixing: mean(models.mixing!),
      demAllOnes: ones.mean,
      demGridBest: best.mean,
      bestFineTuneOnOwnDistribution: Object.fromEntries(dists.map((d) => [d.id, models[`ft-${d.id}`]![d.id]!])),
      perDistribution: Object.fromEntries(
        dists.map((d) => [d.id, { base: models.base![d.id]!, fineTune: models[`ft-${d.id}`]![d.id]!, mixing: models.mixing![d.id]!, demAllOnes: ones.ppl[d.id]!, demGridBest: best.ppl[d.id]! }]),
      ),
      winner: best.mean < mean(models.mixing!) ? 'DEM (grid best)' : 'data mixing',
    };
    const manifest = {
      name: 'DEM Studio demo workspace',
      description:
        'A byte-level GPT-2 trained in the browser on four distributions, one gentle fine-tune per distribution (the DEM distribution vectors), and a data-mixing baseline with the same training budget as all fine-tunes together.',
      generatedBy: 'npm run make-demo (scripts/make-demo.ts)',
      generatedAt: new Date().toISOString(),
      quick,
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', node: process.version, chromium: browser },
      trainedWith: 'src/worker/train.worker.ts (onnxruntime-web 1.19.2 training wasm) in headless Chromium',
      tokenizer: { kind: 'byte-level: token id = byte value, no merges', vocabSize: 257, specialTokens: { [EOT]: EOT_ID }, file: 'tokenizer.json in every checkpoint' },
      model: { config: configJson(SHAPE), parameters: paramCount(SHAPE), dtype: 'F32', initSeed: INIT_SEED },
      distributions: dists.map((d) => ({
        id: d.id,
        title: d.title,
        source: d.source,
        licence: d.licence,
        split: d.split,
        trainBytes: Buffer.byteLength(d.train),
        validation: `validation/${d.id}.txt`,
        validationBytes: Buffer.byteLength(d.validation),
      })),
      checkpoints: runs,
      evaluation: {
        tool: 'perplexity per byte token as the studio defines it (windows of `context` tokens), computed on the CPU with the training code\'s eval graph in onnxruntime-web (scripts/demo/cpuPpl.ts) for speed; cross-checked against `dem ppl` (the studio\'s GPU forward pass) below',
        crossCheck,
        context: T,
        perplexity: models,
        merges: { method: 'task_arithmetic (DEM): base + Σ ω_i (ft_i - base), in float32', grid: { each: GRID, allOnesScaledBy: SCALES }, allOnes: ones, best, all: merges },
        comparison,
      },
      timings: { trainingSeconds: Math.round(trainSeconds), evaluationSeconds: Math.round(evalSeconds), totalSeconds: Math.round((Date.now() - started) / 1000) },
      checks: { fineTunesBeatBaseOnOwnDistribution: failures.length === 0, failures },
    };
    writeFileSync(join(OUT, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const size = folderBytes(OUT);
    log(`public/demo: ${formatBytes(size)}`);
    const fmt = (v: number): string => v.toFixed(3).padStart(8);
    console.log(`\nheld-out perplexity (context ${T})\n${'model'.padEnd(26)}${dists.map((d) => d.id.padStart(11)).join('')}       mean`);
    const rows: [string, PplRow][] = [...Object.entries(models), ['DEM ω = 1', ones.ppl], [`DEM grid best (${Object.values(best.weights).join(', ')})`, best.ppl]];
    for (const [name, row] of rows) console.log(`${name.padEnd(26)}${dists.map((d) => `   ${fmt(row[d.id]!)}`).join('')}   ${fmt(mean(row))}`);
    console.log(`\n${comparison.winner} wins on the mean: DEM best ${best.mean.toFixed(3)} vs mixing ${mean(models.mixing!).toFixed(3)}`);
    if (failures.length) throw new Error(`fine-tunes that do not beat the base on their own distribution: ${failures.join(', ')}`);
    if (size > MAX_BYTES) throw new Error(`public/demo is ${size} bytes, above ${MAX_BYTES}`);
    const worst = Math.max(crossCheck.base.relativeDifference, crossCheck.demAllOnes.relativeDifference);
    if (!(worst < 1e-3)) throw new Error(`the CPU evaluator and dem ppl disagree by ${worst}`);
  } finally {
    rt.destroy();
  }
  await makeDemoTasks({ log });
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`make-demo failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
