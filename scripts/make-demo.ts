/**
 * `npm run make-demo`: builds the studio's demo workspace in public/demo/. The last of three stages:
 *
 *   npm run make-demo-data                               corpora, tokenizer, pretraining token ids
 *   nice -n 10 /usr/bin/python3 scripts/demo/pretrain.py  the base model (PyTorch, resumable)
 *   npm run make-demo                                    this script
 *
 * 1. The four distributions (scripts/demo/corpora.ts), split by document into pretraining,
 *    fine-tuning, validation (public/demo/validation/*.txt) and test text.
 * 2. The pretrained base from .demo-work/base/ (it stands in for a downloaded pretrained model),
 *    stored in F16 as public/demo/base/.
 * 3. In headless Chromium, through the studio's own training Worker (onnxruntime-web training
 *    wasm): one gentle fine-tune of the base per distribution, then the data-mixing baseline: the
 *    base trained on the mixture of the four fine-tuning texts for as many steps as all
 *    fine-tunes together, at the fine-tunes' settings.
 * 4. Perplexity (the studio's definition, context = the model's positions) of the base, every
 *    fine-tune, the mixing baseline and a grid of DEM merges on the validation texts, and of the
 *    base, the fine-tunes, mixing and the chosen DEM merges on the larger test texts, which no
 *    choice ever looks at; sample generations; everything recorded in public/demo/manifest.json.
 * 5. The task files and the DEM-vs-mixing table (scripts/demo/tasks.ts, `npm run make-demo-tasks`).
 *
 * Fails if a fine-tune does not beat the base on its own distribution, or if public/demo grows
 * past 64 MB. Options: --base DIR, --ft-steps N, --port N, --reuse (keep fine-tunes already in
 * .demo-work/runs/ from an interrupted run), --quick (a smoke run, not for committing).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  DEFAULT_METHOD,
  decodeToF32,
  encodeFromF32,
  formatBytes,
  loadTokenizer,
  parseRecipe,
  writeSafetensors,
  Workspace,
  type GpuRuntime,
  type MergeRecipe,
  type TrainSettings,
} from '../src/engine/index.ts';
import { folderFileSet } from '../src/node/files.ts';
import { cpuScorer, openFolder, taskArithmetic, weightsOf } from './demo/cpuPpl.ts';
import { createNodeRuntime } from '../src/node/gpu.ts';
import { startHarness } from './demo/browser.ts';
import { interleave, loadDistributions, type Distribution } from './demo/corpora.ts';
import { configJson, paramCount } from './demo/init.ts';
import type { PageTrainResult } from './demo/page.ts';
import { CORPUS, QUICK_CORPUS, SHAPE, WORK } from './demo/settings.ts';
import { EOT } from './demo/tokenizer.ts';
import { makeDemoTasks } from './demo/tasks.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const OUT = join(ROOT, 'public', 'demo');
const MAX_BYTES = 64 * 1024 * 1024;
/** The demo's checkpoints are stored in half precision (the budget); merges are rounded to it too. */
const DTYPE = 'F16' as const;

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    'ft-steps': { type: 'string' },
    port: { type: 'string' },
    reuse: { type: 'boolean' },
    quick: { type: 'boolean' },
  },
});
const quick = args.quick ?? false;

// ---- settings (recorded in the manifest) ----
const CONTEXT = SHAPE.P;
// Gentle fine-tunes: distribution vectors must stay in the base's linear regime for their sum to help.
const FT: TrainSettings = {
  steps: Number(args['ft-steps'] ?? (quick ? 6 : 60)),
  batchSize: 4,
  seqLen: CONTEXT,
  lr: 3e-4,
  warmupSteps: quick ? 1 : 10,
  weightDecay: 0,
  minLrRatio: 0.1,
  trainable: { kind: 'all' },
  heldOutFraction: 0.02,
  evalEvery: quick ? 3 : 25,
  snapshotEvery: 0,
  seed: 1,
};
// Grid of DEM weights: every ω_i in GRID (the all-ones merge is one of them).
const GRID = [0.5, 1];
// ...and the all-ones direction scaled by these λ.
const SCALES = [0.25, 0.75, 1.25, 1.5];
/** Sample generations: a prompt per distribution, seeded sampling (as the studio's Learn mode generates). */
const PROMPTS: Record<string, string> = { prose: 'The whale', email: 'Subject: Re:', code: 'def ', arithmetic: '37 + 45 =' };
const SAMPLING = { maxTokens: quick ? 8 : 48, temperature: 0.8, topK: 40, seed: 1 };

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
  trainedWith: string;
  settings: TrainSettings | Record<string, unknown>;
  tokensSeen: number;
  seconds: number;
  tokensPerSecond: number;
  trainLoss: { first: number; last10Mean: number };
  heldOut: { step: number; loss: number }[];
}

const STUDIO_TRAINER = 'the studio\'s training Worker (src/worker/train.worker.ts, onnxruntime-web 1.19.2 training wasm) in headless Chromium';

function record(name: string, role: RunRecord['role'], trainedOn: string, settings: TrainSettings, r: PageTrainResult, distribution?: string): RunRecord {
  const last = r.losses.slice(-10);
  return {
    name,
    path: `${name}/`,
    role,
    ...(distribution ? { distribution } : {}),
    startsFrom: 'base',
    trainedOn,
    trainedWith: STUDIO_TRAINER,
    settings,
    tokensSeen: settings.steps * settings.batchSize * settings.seqLen,
    seconds: Number(r.seconds.toFixed(1)),
    tokensPerSecond: Math.round(r.tokensPerSecond),
    trainLoss: { first: r.losses[0]!, last10Mean: last.reduce((a, b) => a + b, 0) / last.length },
    heldOut: r.heldOut,
  };
}

/** What scripts/demo/pretrain.py writes beside the base (pretrain.json). */
interface PretrainSummary {
  script: string;
  torch: string;
  threads: number;
  parameters: number;
  settings: Record<string, unknown>;
  tokensPerStep: number;
  tokensSeen: number;
  seconds: number;
  trainLoss: { first: number; last100Mean: number; curve: { step: number; loss: number }[] };
  heldOut: { step: number; tokens: number; loss: Record<string, number>; mean: number }[];
  sampling: Record<string, number>;
}

/** The pretrained base in F16: same tensor names and order, config torch_dtype float16. */
async function baseInHalf(dir: string): Promise<Map<string, Uint8Array>> {
  const ckpt = await openFolder(dir);
  const expected = configJson(SHAPE);
  for (const k of ['n_layer', 'n_embd', 'n_head', 'n_positions', 'vocab_size'] as const) {
    if (ckpt.config[k] !== expected[k]) throw new Error(`${dir}/config.json: ${k} is ${String(ckpt.config[k])}, scripts/demo/settings.ts says ${String(expected[k])}: run make-demo-data and the pretraining again`);
  }
  const entries = [];
  for (const t of ckpt.tensors.values()) {
    if (t.dtype !== 'F32') throw new Error(`${dir}/model.safetensors: ${t.storedName} is ${t.dtype}, expected F32`);
    entries.push({ name: t.storedName, dtype: DTYPE, shape: t.shape, data: encodeFromF32(decodeToF32(await ckpt.read(t.name), 'F32'), DTYPE) });
  }
  const enc = new TextEncoder();
  return new Map([
    ['config.json', enc.encode(`${JSON.stringify({ ...ckpt.config, torch_dtype: 'float16' }, null, 2)}\n`)],
    ['model.safetensors', writeSafetensors(entries, { format: 'pt' })],
    ['tokenizer.json', new Uint8Array(readFileSync(join(dir, 'tokenizer.json')))],
  ]);
}

type PplRow = Record<string, number>;

async function main(): Promise<void> {
  const port = Number(args.port ?? 5198);
  const baseDir = args.base ?? join(WORK, 'base');
  if (!existsSync(join(baseDir, 'pretrain.json'))) {
    throw new Error(`no pretrained base in ${baseDir}: run \`npm run make-demo-data\` and \`nice -n 10 /usr/bin/python3 scripts/demo/pretrain.py\` first`);
  }
  const pretrain = JSON.parse(readFileSync(join(baseDir, 'pretrain.json'), 'utf8')) as PretrainSummary;
  log(`make-demo${quick ? ' (quick smoke run: do not commit)' : ''}: GPT-2 L ${SHAPE.L}, C ${SHAPE.C}, ${SHAPE.NH} heads, context ${SHAPE.P}, vocabulary ${SHAPE.V}, ${paramCount(SHAPE)} parameters`);

  // ---- 1. data ----
  const dists: Distribution[] = loadDistributions(quick ? QUICK_CORPUS : CORPUS);
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(join(OUT, 'validation'), { recursive: true });
  for (const d of dists) {
    writeFileSync(join(OUT, 'validation', `${d.id}.txt`), d.validation);
    log(`${d.id}: ${Buffer.byteLength(d.train)} fine-tuning bytes (${d.split.train}), ${Buffer.byteLength(d.validation)} validation bytes, ${Buffer.byteLength(d.test)} test bytes`);
  }
  // Chunks of 2 KB interleave the four, so every part of the stream mixes them equally.
  const mixture = interleave(dists.map((d) => d.train), 2048);

  // ---- 2. the base, in half precision ----
  const baseFiles = await baseInHalf(baseDir);
  writeFolder('base', b64(baseFiles));
  const runs: RunRecord[] = [
    {
      name: 'base',
      path: 'base/',
      role: 'base',
      startsFrom: `fresh initialisation (seed ${String(pretrain.settings.seed)})`,
      trainedOn: `the pretraining part of all four distributions, windows drawn with probabilities ${JSON.stringify(pretrain.sampling)}`,
      trainedWith: `${pretrain.script} (PyTorch ${pretrain.torch} on the CPU, ${pretrain.threads} threads); stored in ${DTYPE}`,
      settings: pretrain.settings,
      tokensSeen: pretrain.tokensSeen,
      seconds: pretrain.seconds,
      tokensPerSecond: Math.round(pretrain.tokensSeen / pretrain.seconds),
      trainLoss: { first: pretrain.trainLoss.first, last10Mean: pretrain.trainLoss.last100Mean },
      heldOut: pretrain.heldOut.map((h) => ({ step: h.step, loss: h.mean })),
    },
  ];
  log(`base: ${pretrain.parameters} parameters pretrained on ${pretrain.tokensSeen} tokens in ${(pretrain.seconds / 60).toFixed(0)} min, held-out ${pretrain.heldOut.at(-1)?.mean.toFixed(3)} nats/token`);

  // ---- 3. fine-tunes and mixing in Chromium (each kept in .demo-work/runs/ for --reuse) ----
  const runDir = join(WORK, quick ? 'runs-quick' : 'runs');
  if (!args.reuse) rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const mixSettings: TrainSettings = { ...FT, steps: FT.steps * dists.length, evalEvery: FT.evalEvery * dists.length, seed: 200 };
  const jobs = [
    ...dists.map((d, i) => ({ name: `ft-${d.id}`, role: 'fine-tune' as const, text: d.train, trainedOn: d.id, settings: { ...FT, seed: 100 + i }, distribution: d.id })),
    { name: 'mixing', role: 'mixing' as const, text: mixture, trainedOn: 'mixture of the four fine-tuning texts (interleaved 2 KB chunks)', settings: mixSettings, distribution: undefined },
  ];
  const browser = { version: '', crossOriginIsolated: false, hardwareConcurrency: 0, ortThreadWorkers: 0 };
  const trainStart = Date.now();
  const todo = jobs.filter((j) => !existsSync(join(runDir, `${j.name}.json`)));
  if (todo.length) {
    const harness = await startHarness(port, log);
    Object.assign(browser, { version: harness.browserVersion, crossOriginIsolated: harness.isolated, hardwareConcurrency: harness.cores });
    log(`Chromium ${harness.browserVersion}: crossOriginIsolated ${harness.isolated}, ${harness.cores} cores`);
    try {
      for (const j of todo) {
        log(`${j.name}: ${j.settings.steps} steps of ${j.settings.batchSize} x ${j.settings.seqLen}, lr ${j.settings.lr}`);
        const r = await harness.train({ name: j.name, files: b64(baseFiles), text: j.text, settings: j.settings });
        browser.ortThreadWorkers = Math.max(browser.ortThreadWorkers, harness.ortThreadWorkers());
        writeFileSync(join(runDir, `${j.name}.json`), JSON.stringify({ record: record(j.name, j.role, j.trainedOn, j.settings, r, j.distribution), files: r.files, browser }));
        log(`${j.name} done in ${r.seconds.toFixed(0)} s, ${r.tokensPerSecond.toFixed(0)} tok/s, held-out ${r.heldOut[0]?.loss.toFixed(3)} -> ${r.heldOut.at(-1)?.loss.toFixed(3)}`);
      }
    } finally {
      await harness.close();
    }
  }
  for (const j of jobs) {
    const saved = JSON.parse(readFileSync(join(runDir, `${j.name}.json`), 'utf8')) as { record: RunRecord; files: Record<string, string>; browser: typeof browser };
    writeFolder(j.name, saved.files);
    runs.push(saved.record);
    if (!browser.version) Object.assign(browser, saved.browser);
  }
  const trainSeconds = runs.filter((r) => r.role !== 'base').reduce((n, r) => n + r.seconds, 0);
  log(`fine-tunes and mixing: ${(trainSeconds / 60).toFixed(0)} min of training (this run: ${((Date.now() - trainStart) / 60_000).toFixed(0)} min)`);

  // ---- 4. perplexity: every candidate on the CPU, cross-checked with the studio's GPU path ----
  const evalStart = Date.now();
  const baseCkpt = await openFolder(join(OUT, 'base'));
  const tokenizer = await loadTokenizer(baseCkpt.tokenizerJson);
  const valIds = dists.map((d) => tokenizer.encode(d.validation));
  const testIds = dists.map((d) => tokenizer.encode(d.test));
  const scorer = await cpuScorer(baseCkpt.spec, (n) => baseCkpt.tensors.has(n), CONTEXT);
  const rowOf = (ppls: number[]): PplRow => Object.fromEntries(dists.map((d, i) => [d.id, ppls[i]!]));
  const mean = (r: PplRow): number => Object.values(r).reduce((a, b) => a + b, 0) / Object.values(r).length;
  const models: Record<string, PplRow> = {};
  const weights = new Map<string, Map<string, Float32Array>>();
  const names = ['base', ...dists.map((d) => `ft-${d.id}`), 'mixing'];
  // A DEM merge as the studio computes it: float32, then rounded to the checkpoints' dtype.
  const merge = (ws: readonly number[]): Map<string, Float32Array> => {
    const m = taskArithmetic(weights.get('base')!, dists.map((d) => weights.get(`ft-${d.id}`)!), ws);
    for (const [k, v] of m) m.set(k, decodeToF32(encodeFromF32(v, DTYPE), DTYPE));
    return m;
  };
  const rt: GpuRuntime = await createNodeRuntime({ label: 'make-demo' });
  try {
    for (const name of names) {
      const w = await weightsOf(await openFolder(join(OUT, name)), scorer.params);
      weights.set(name, w);
      models[name] = rowOf(await scorer.perplexities(w, valIds));
      log(`ppl ${name}: ${Object.entries(models[name]).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
    }
    const merges: { weights: Record<string, number>; ppl: PplRow; mean: number }[] = [];
    const combos: number[][] = [[]];
    for (let i = 0; i < dists.length; i++) combos.splice(0, combos.length, ...combos.flatMap((c) => GRID.map((w) => [...c, w])));
    for (const lam of SCALES) combos.push(dists.map(() => lam));
    for (const ws of combos) {
      const row = rowOf(await scorer.perplexities(merge(ws), valIds));
      merges.push({ weights: Object.fromEntries(dists.map((d, i) => [d.id, ws[i]!])), ppl: row, mean: mean(row) });
      log(`ppl DEM ω = (${ws.join(', ')}): mean ${mean(row).toFixed(3)}`);
    }
    const ones = merges.find((m) => Object.values(m.weights).every((w) => w === 1))!;
    const best = merges.reduce((a, b) => (b.mean < a.mean ? b : a));

    // The test texts: chosen by nothing, so the honest comparison.
    const test: Record<string, PplRow> = {};
    for (const name of names) test[name] = rowOf(await scorer.perplexities(weights.get(name)!, testIds));
    test.demAllOnes = rowOf(await scorer.perplexities(merge(dists.map((d) => ones.weights[d.id]!)), testIds));
    test.demGridBest = rowOf(await scorer.perplexities(merge(dists.map((d) => best.weights[d.id]!)), testIds));
    for (const [k, row] of Object.entries(test)) log(`test ppl ${k}: mean ${mean(row).toFixed(3)}`);
    await scorer.release();

    // The studio's own numbers: the engine's Workspace (GPU forward pass, Dawn on SwiftShader
    // here, as `dem ppl` runs it) on one validation text, for the base and the all-ones merge,
    // must agree with the CPU evaluator.
    const checkText = dists[0]!;
    const ws = new Workspace({ runtime: async () => rt });
    for (const name of names) await ws.open(name, name, await folderFileSet(join(OUT, name)));
    await ws.addText(checkText.id, `validation/${checkText.id}.txt`, checkText.validation, 'base');
    const recipeOf = (w: Record<string, number>): MergeRecipe =>
      parseRecipe({ version: 1, method: DEFAULT_METHOD, base: 'base', models: dists.map((d) => ({ model: `ft-${d.id}`, parameters: { weight: w[d.id] ?? 0 } })) });
    const gpuPpl = async (recipe: MergeRecipe): Promise<number> => (await ws.evaluate({ recipe, texts: [checkText.id], context: CONTEXT })).texts[0]!.ppl;
    const gpuBase = await gpuPpl({ version: 1, method: DEFAULT_METHOD, base: 'base', models: [], parameters: {} });
    const gpuMerge = await gpuPpl(recipeOf(ones.weights));
    const cpuMerge = ones.ppl[checkText.id]!;
    const crossCheck = {
      text: `validation/${checkText.id}.txt`,
      base: { demPplGpu: gpuBase, cpu: models.base![checkText.id]!, relativeDifference: Math.abs(gpuBase / models.base![checkText.id]! - 1) },
      demAllOnes: { demPplGpu: gpuMerge, cpu: cpuMerge, relativeDifference: Math.abs(gpuMerge / cpuMerge - 1) },
    };
    log(`cross-check on ${checkText.id}: GPU base ${gpuBase.toFixed(4)} vs CPU ${models.base![checkText.id]!.toFixed(4)}; DEM ω=1 ${gpuMerge.toFixed(4)} vs ${cpuMerge.toFixed(4)}`);

    // Sample generations (the engine's generate, seeded sampling): every model on its own
    // distribution's prompt; the base, mixing and the best DEM merge on every prompt.
    const samples: { model: string; prompt: string; text: string }[] = [];
    const sample = async (model: string, recipe: MergeRecipe, prompt: string): Promise<void> => {
      const g = await ws.generate({ recipe, prompt, ...SAMPLING });
      samples.push({ model, prompt, text: g.text });
      log(`sample ${model} | ${JSON.stringify(prompt + g.text)}`);
    };
    const alone = (name: string): MergeRecipe => ({ version: 1, method: DEFAULT_METHOD, base: name, models: [], parameters: {} });
    const bestLabel = `DEM (${dists.map((d) => best.weights[d.id]).join(', ')})`;
    for (const d of dists) {
      await sample('base', alone('base'), PROMPTS[d.id]!);
      await sample(`ft-${d.id}`, alone(`ft-${d.id}`), PROMPTS[d.id]!);
      await sample('mixing', alone('mixing'), PROMPTS[d.id]!);
      await sample(bestLabel, recipeOf(best.weights), PROMPTS[d.id]!);
    }
    const evalSeconds = (Date.now() - evalStart) / 1000;

    // ---- 5. manifest ----
    const failures = dists.filter((d) => !(models[`ft-${d.id}`]![d.id]! < models.base![d.id]!)).map((d) => d.id);
    const comparison = {
      note:
        'Mean of the four validation perplexities (lower is better). The grid is selected on these same validation texts, as DEM selects coefficients by validation perplexity; evaluation.test has the same models on larger test texts that nothing was chosen on.',
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
    const testComparison = {
      note: 'The same models on the test texts (never used to choose anything): mean of the four perplexities. The DEM merge is the grid point chosen on the validation texts.',
      mean: Object.fromEntries(Object.entries(test).map(([k, row]) => [k, mean(row)])),
      winner: mean(test.demGridBest!) < mean(test.mixing!) ? 'DEM (grid best)' : 'data mixing',
      perDistributionWinner: Object.fromEntries(dists.map((d) => [d.id, test.demGridBest![d.id]! < test.mixing![d.id]! ? 'DEM (grid best)' : 'data mixing'])),
    };
    const ftSeconds = runs.filter((r) => r.role === 'fine-tune').reduce((n, r) => n + r.seconds, 0);
    const mixRun = runs.find((r) => r.role === 'mixing')!;
    const costs = {
      note: 'Training cost of each approach after the shared base, in this run (wall-clock seconds on this machine, tokens processed). DEM adds one forward pass over the validation texts per candidate merge; data mixing would need one training run per candidate mixing ratio.',
      dem: { trainingSeconds: Math.round(ftSeconds), trainingTokens: runs.filter((r) => r.role === 'fine-tune').reduce((n, r) => n + r.tokensSeen, 0), runs: dists.length, candidatesEvaluated: merges.length },
      mixing: { trainingSeconds: Math.round(mixRun.seconds), trainingTokens: mixRun.tokensSeen, runs: 1, candidatesEvaluated: 1 },
      validationTokens: valIds.reduce((n, ids) => n + ids.length, 0),
    };
    const manifest = {
      name: 'DEM Studio demo workspace',
      description:
        'A small GPT-2 (byte-level BPE) pretrained on four distributions, one gentle fine-tune per distribution made by the studio\'s own trainer (the DEM distribution vectors), and a data-mixing baseline with the same training budget as all fine-tunes together.',
      generatedBy: 'npm run make-demo-data; scripts/demo/pretrain.py; npm run make-demo (scripts/make-demo.ts)',
      generatedAt: new Date().toISOString(),
      quick,
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', node: process.version, chromium: browser },
      trainedWith: `base: ${pretrain.script} (PyTorch); fine-tunes and mixing: ${STUDIO_TRAINER}`,
      tokenizer: { kind: 'byte-level BPE (GPT-2 scheme) learned on the pretraining text; digits never merged', vocabSize: SHAPE.V, specialTokens: { [EOT]: SHAPE.V! - 1 }, file: 'tokenizer.json in every checkpoint', learnedBy: 'scripts/demo/bpe.ts' },
      model: { config: configJson(SHAPE), parameters: paramCount(SHAPE), dtype: DTYPE },
      distributions: dists.map((d) => ({
        id: d.id,
        title: d.title,
        source: d.source,
        licence: d.licence,
        split: d.split,
        pretrainBytes: d.pretrain.reduce((n, x) => n + Buffer.byteLength(x), 0),
        trainBytes: Buffer.byteLength(d.train),
        validation: `validation/${d.id}.txt`,
        validationBytes: Buffer.byteLength(d.validation),
        testBytes: Buffer.byteLength(d.test),
        prompt: PROMPTS[d.id],
      })),
      pretraining: { ...pretrain, trainLoss: pretrain.trainLoss },
      checkpoints: runs,
      evaluation: {
        tool: 'perplexity per token as the studio defines it (windows of `context` tokens), computed on the CPU with the training code\'s eval graph in onnxruntime-web (scripts/demo/cpuPpl.ts) for speed; merges in float32 rounded to F16 as the studio merges; cross-checked against the engine\'s GPU forward pass below',
        crossCheck,
        context: CONTEXT,
        perplexity: models,
        merges: { method: `task_arithmetic (DEM): base + Σ ω_i (ft_i - base), in float32, rounded to ${DTYPE}`, grid: { each: GRID, allOnesScaledBy: SCALES }, allOnes: ones, best, all: merges },
        comparison,
        test: { tokens: testIds.reduce((n, ids) => n + ids.length, 0), perplexity: test, comparison: testComparison },
        costs,
        samples: { settings: SAMPLING, prompts: PROMPTS, generations: samples },
      },
      timings: { fineTuneAndMixingSeconds: Math.round(trainSeconds), evaluationSeconds: Math.round(evalSeconds), totalSeconds: Math.round((Date.now() - started) / 1000) },
      checks: { fineTunesBeatBaseOnOwnDistribution: failures.length === 0, failures },
    };
    writeFileSync(join(OUT, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    copyFileSync(join(baseDir, 'pretrain.json'), join(runDir, 'pretrain.json'));
    const size = folderBytes(OUT);
    log(`public/demo: ${formatBytes(size)}`);
    const fmt = (v: number): string => v.toFixed(3).padStart(8);
    const table = (title: string, rows: [string, PplRow][]): void => {
      console.log(`\n${title}\n${'model'.padEnd(26)}${dists.map((d) => d.id.padStart(11)).join('')}       mean`);
      for (const [name, row] of rows) console.log(`${name.padEnd(26)}${dists.map((d) => `   ${fmt(row[d.id]!)}`).join('')}   ${fmt(mean(row))}`);
    };
    table(`validation perplexity (context ${CONTEXT})`, [...Object.entries(models), ['DEM ω = 1', ones.ppl], [`DEM grid best (${Object.values(best.weights).join(', ')})`, best.ppl]]);
    table('test perplexity', Object.entries(test));
    console.log(`\nvalidation: ${comparison.winner} wins on the mean (DEM best ${best.mean.toFixed(3)} vs mixing ${mean(models.mixing!).toFixed(3)}); test: ${testComparison.winner}`);
    if (failures.length) throw new Error(`fine-tunes that do not beat the base on their own distribution: ${failures.join(', ')}`);
    if (size > MAX_BYTES) throw new Error(`public/demo is ${size} bytes, above ${MAX_BYTES}`);
    const worst = Math.max(crossCheck.base.relativeDifference, crossCheck.demAllOnes.relativeDifference);
    if (!(worst < 1e-4)) throw new Error(`the CPU evaluator and the studio's GPU path disagree by ${worst}`);
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
