/**
 * `npm run bench:train` (a benchmark, not a test): training tokens/s of onnxruntime-web's
 * training wasm (the engine's Trainer, in Node) against PyTorch on the CPU
 * (scripts/bench-train-torch.py: same model, batch, sequence length, AdamW), each with one
 * thread and with all cores, full fine-tuning and a LoRA (rank 8, α 16, every block projection)
 * on the same model, measured in the same run, alternating ORT and torch per setting so both see
 * the same machine load. Then a larger base than full fine-tuning can hold in the browser: the
 * shape of SmolLM2-360M (config from the hub) cut to 24 of its 32 layers, 283M parameters, random
 * weights. onnxruntime-web's wasm is 32-bit, so its heap ends at 4 GiB; full fine-tuning keeps
 * the f32 weights, their gradients and two Adam moments there, 16 bytes a parameter, 4.2 GiB
 * here before any activation (the Trainer's estimate, which also counts a gradient temporary,
 * activations and the checkpoint handed over, refuses it), while a LoRA keeps only the weights
 * (4 bytes a parameter) plus a few MB of factors and their moments. PyTorch (no such bound)
 * trains both. Writes bench-results/train.json and prints a table; torch's BLAS is recorded
 * (Debian's python3-torch uses the reference BLAS unless libopenblas0-pthread is installed).
 *
 *   npm run bench:train [-- --steps 20 --large-layers 24 --large-seq 64 --large-steps 2 --large-threads 1 --no-large]
 *
 * The large base runs with one thread by default: on a machine shared with other work, two
 * OpenMP threads in PyTorch wait on each other at every elementwise op (a step measured 8x slower
 * than with one thread on this 2-core machine under load), which would flatter ORT.
 *
 * ORT's thread count is fixed when its wasm starts, so every measurement runs in a fresh child
 * process (`--child`).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError, openCheckpoint, bytesSource, Trainer, loraTargetNames, type OrtTrainingModule, type TrainableSelection } from '../src/engine/index.ts';
import { configJson, initCheckpoint, paramCount, type ModelShape } from './demo/init.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const DIST = join(ROOT, 'node_modules/onnxruntime-web-training/dist/');

const TINY: Record<string, ModelShape> = {
  'tiny-gpt2': { family: 'gpt2', L: 2, C: 64, NH: 4, P: 128 },
  'tiny-llama': { family: 'llama', L: 2, C: 64, NH: 4, NKV: 2, FF: 176, P: 128 },
};
/** SmolLM2-360M: hidden 960, 15 / 5 heads of 64, MLP 2560, vocabulary 49152, tied, rope_theta 100000 (32 layers). */
const largeShape = (L: number): ModelShape => ({ family: 'llama', L, C: 960, NH: 15, NKV: 5, FF: 2560, P: 2048, V: 49152, tie: true, ropeTheta: 100000 });
const LORA = { rank: 8, alpha: 16 };
const LR = 1e-3;

type Mode = 'full' | 'lora';

interface Measurement {
  tokensPerSecond: number;
  msPerStep: number;
  threads: number;
  trainable?: number;
  estimateBytes?: number;
  maxRssBytes?: number;
  refused?: string;
}

interface ChildArgs {
  model: string;
  layers: number;
  mode: Mode;
  threads: number;
  batch: number;
  seq: number;
  warmup: number;
  steps: number;
}

const shapeOf = (model: string, layers: number): ModelShape => TINY[model] ?? largeShape(layers);

/** In a child process: ORT with `threads` threads trains `model` for warmup + steps steps. */
async function child(a: ChildArgs): Promise<void> {
  const ort = (await import(join(DIST, 'ort.training.wasm.min.mjs'))) as OrtTrainingModule & { env: { wasm: { numThreads: number; wasmPaths: string } } };
  ort.env.wasm.numThreads = a.threads;
  ort.env.wasm.wasmPaths = DIST;
  const files = initCheckpoint(shapeOf(a.model, a.layers), 1);
  const ckpt = await openCheckpoint(new Map([...files].map(([k, v]) => [k, bytesSource(v, k)])), a.model);
  files.clear();
  const trainable: TrainableSelection = a.mode === 'lora' ? { kind: 'lora', ...LORA, targets: loraTargetNames(ckpt.spec) } : { kind: 'all' };
  // Random bytes: speed does not depend on the text.
  let x = 12345;
  const tokens = Array.from({ length: (a.warmup + a.steps + 2) * a.batch * (a.seq + 1) }, () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 16) % 256);
  let trainer: Trainer;
  try {
    trainer = await Trainer.create(ort, ckpt, tokens, {
      steps: a.warmup + a.steps, batchSize: a.batch, seqLen: a.seq, lr: LR, warmupSteps: 0, weightDecay: 0, trainable,
      heldOutFraction: 0, evalEvery: 0, snapshotEvery: 0, seed: 1,
    });
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    process.stdout.write(`${JSON.stringify({ tokensPerSecond: 0, msPerStep: 0, threads: a.threads, refused: e.message } satisfies Measurement)}\n`);
    return;
  }
  for (let i = 0; i < a.warmup; i++) await trainer.trainStep();
  const t0 = performance.now();
  for (let i = 0; i < a.steps; i++) await trainer.trainStep();
  const sec = (performance.now() - t0) / 1000;
  await trainer.release();
  const m: Measurement = {
    tokensPerSecond: (a.steps * a.batch * a.seq) / sec,
    msPerStep: (1000 * sec) / a.steps,
    threads: a.threads,
    trainable: trainer.memory.trainable,
    estimateBytes: trainer.memory.bytes,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

function lastJson<V>(out: string): V {
  const line = out.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (!line) throw new Error(`no result in:\n${out}`);
  return JSON.parse(line) as V;
}

interface TorchMeasurement extends Measurement {
  framework: string;
  blas: string[];
}

interface Row {
  model: string;
  mode: Mode;
  parameters: number;
  threads: number;
  batch: number;
  seqLen: number;
  ortTokensPerSecond: number | null;
  torchTokensPerSecond: number;
  ratio: number | null;
  ortMsPerStep: number | null;
  torchMsPerStep: number;
  trainable: number;
  ortEstimateGiB?: number;
  ortMaxRssGiB?: number;
  ortRefused?: string;
  torch: string;
}

const gib = (b: number): number => Number((b / 1024 ** 3).toFixed(2));

function measure(here: string, dir: string, a: ChildArgs): Row {
  const shape = shapeOf(a.model, a.layers);
  const cfgPath = join(dir, `${a.model}-${a.layers}.json`);
  writeFileSync(cfgPath, JSON.stringify(configJson(shape)));
  const ortM = lastJson<Measurement>(
    execFileSync(
      process.execPath,
      [...process.execArgv, here, '--child', a.model, '--layers', String(a.layers), '--mode', a.mode, '--threads', String(a.threads), '--batch', String(a.batch), '--seq', String(a.seq), '--warmup', String(a.warmup), '--steps', String(a.steps)],
      { encoding: 'utf8', maxBuffer: 1 << 24 },
    ),
  );
  const torchArgs = [join(ROOT, 'scripts/bench-train-torch.py'), '--config', cfgPath, '--batch', String(a.batch), '--seq', String(a.seq), '--threads', String(a.threads), '--warmup', String(a.warmup), '--steps', String(a.steps), '--lr', String(LR)];
  if (a.mode === 'lora') torchArgs.push('--lora-rank', String(LORA.rank), '--lora-alpha', String(LORA.alpha));
  // OpenBLAS keeps a thread pool of its own: held to the same count as torch's.
  const torchM = lastJson<TorchMeasurement>(execFileSync('/usr/bin/python3', torchArgs, { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: String(a.threads) } }));
  const refused = ortM.refused !== undefined;
  const row: Row = {
    model: a.model,
    mode: a.mode,
    parameters: paramCount(shape),
    threads: a.threads,
    batch: a.batch,
    seqLen: a.seq,
    ortTokensPerSecond: refused ? null : Math.round(ortM.tokensPerSecond),
    torchTokensPerSecond: Math.round(torchM.tokensPerSecond),
    ratio: refused ? null : Number((ortM.tokensPerSecond / torchM.tokensPerSecond).toFixed(3)),
    ortMsPerStep: refused ? null : Number(ortM.msPerStep.toFixed(1)),
    torchMsPerStep: Number(torchM.msPerStep.toFixed(1)),
    trainable: (torchM as TorchMeasurement & { trainable: number }).trainable,
    ...(ortM.estimateBytes !== undefined ? { ortEstimateGiB: gib(ortM.estimateBytes) } : {}),
    ...(ortM.maxRssBytes !== undefined ? { ortMaxRssGiB: gib(ortM.maxRssBytes) } : {}),
    ...(refused ? { ortRefused: ortM.refused } : {}),
    torch: `${torchM.framework}; BLAS ${torchM.blas.map((p) => p.split('/').slice(-2).join('/')).join(', ') || 'none loaded'}`,
  };
  blas = torchM.blas;
  const ort = refused ? `ORT refused (${ortM.refused!.slice(0, 90)}…)` : `ORT ${row.ortTokensPerSecond} tok/s`;
  console.log(`${a.model} ${a.mode} threads ${a.threads}: ${ort}, torch ${row.torchTokensPerSecond} tok/s${row.ratio !== null ? `, ratio ${row.ratio}` : ''}`);
  return row;
}

let blas: string[] = [];

function main(opts: { steps: number; largeLayers: number; largeSeq: number; largeSteps: number; largeThreads: number; large: boolean }): void {
  const allThreads = cpus().length;
  const dir = mkdtempSync(join(tmpdir(), 'bench-train-'));
  const rows: Row[] = [];
  const here = new URL(import.meta.url).pathname;
  const B = 8;
  const T = 128;
  for (const model of Object.keys(TINY)) {
    for (const threads of [...new Set([1, allThreads])]) {
      for (const mode of ['full', 'lora'] as const) rows.push(measure(here, dir, { model, layers: 0, mode, threads, batch: B, seq: T, warmup: 3, steps: opts.steps }));
    }
  }
  const large = `smollm2-360m-shape-${opts.largeLayers}l`;
  if (opts.large) {
    for (const mode of ['full', 'lora'] as const) rows.push(measure(here, dir, { model: large, layers: opts.largeLayers, mode, threads: opts.largeThreads, batch: 1, seq: opts.largeSeq, warmup: 1, steps: opts.largeSteps }));
  }
  const loraOverFull = rows
    .filter((r) => r.mode === 'lora')
    .map((l) => {
      const f = rows.find((r) => r.mode === 'full' && r.model === l.model && r.threads === l.threads)!;
      return {
        model: l.model,
        threads: l.threads,
        ort: l.ortTokensPerSecond !== null && f.ortTokensPerSecond !== null ? Number((l.ortTokensPerSecond / f.ortTokensPerSecond).toFixed(3)) : null,
        torch: Number((l.torchTokensPerSecond / f.torchTokensPerSecond).toFixed(3)),
      };
    });
  const result = {
    benchmark: 'training tokens/s: onnxruntime-web 1.19.2 training wasm (Node, engine Trainer) vs PyTorch CPU (scripts/bench-train-torch.py), full fine-tuning and LoRA',
    setting: {
      tiny: { batch: B, seqLen: T, warmupSteps: 3, timedSteps: opts.steps },
      large: opts.large ? { model: large, batch: 1, seqLen: opts.largeSeq, warmupSteps: 1, timedSteps: opts.largeSteps, threads: opts.largeThreads } : null,
      lora: `rank ${LORA.rank}, alpha ${LORA.alpha}, every block projection (all-linear), base frozen`,
      optimizer: `AdamW lr ${LR}, betas (0.9, 0.999), eps 1e-8, weight decay 0`,
      dtype: 'float32',
      data: 'random byte tokens',
    },
    wasmBound:
      'onnxruntime-web training is wasm32: its heap ends at 4 GiB. Full fine-tuning holds f32 weights, gradients and two Adam moments (16 B a parameter) plus a gradient temporary, activations and the checkpoint handed over (the Trainer\'s estimate); a LoRA holds the frozen weights once (4 B a parameter, plus the checkpoint handed over) and factors of a few MB with their moments.',
    models: Object.fromEntries([...Object.entries(TINY), ...(opts.large ? [[large, largeShape(opts.largeLayers)] as const] : [])].map(([k, v]) => [k, { ...configJson(v), parameters: paramCount(v) }])),
    machine: { cpus: allThreads, cpuModel: cpus()[0]?.model ?? '', node: process.version, loadAverageAtEnd: loadavg().map((v) => Number(v.toFixed(2))) },
    torchBlas: blas,
    target: 'ORT >= 0.5x PyTorch',
    results: rows,
    loraOverFull,
    measuredAt: new Date().toISOString(),
  };
  mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench-results', 'train.json'), `${JSON.stringify(result, null, 2)}\n`);
  const pad = (s: string | number | null, n: number): string => String(s ?? '–').padStart(n);
  console.log(`\n${'model'.padEnd(26)}${'mode'.padStart(5)}${'threads'.padStart(8)}${'ORT tok/s'.padStart(11)}${'torch tok/s'.padStart(13)}${'ORT/torch'.padStart(11)}`);
  for (const r of rows) console.log(`${r.model.padEnd(26)}${pad(r.mode, 5)}${pad(r.threads, 8)}${pad(r.ortRefused ? 'refused' : r.ortTokensPerSecond, 11)}${pad(r.torchTokensPerSecond, 13)}${pad(r.ratio?.toFixed(2) ?? null, 11)}`);
  console.log(`\nLoRA / full tokens/s: ${loraOverFull.map((x) => `${x.model} ×${x.threads}: ORT ${x.ort ?? '–'}, torch ${x.torch}`).join('; ')}`);
  console.log(`torch BLAS: ${blas.join(', ') || 'none loaded'}`);
  console.log('written to bench-results/train.json (machine load shown there: other work on the machine slows both sides)');
}

const { values } = parseArgs({
  options: {
    child: { type: 'string' },
    layers: { type: 'string' },
    mode: { type: 'string' },
    threads: { type: 'string' },
    batch: { type: 'string' },
    seq: { type: 'string' },
    warmup: { type: 'string' },
    steps: { type: 'string' },
    'large-layers': { type: 'string' },
    'large-seq': { type: 'string' },
    'large-steps': { type: 'string' },
    'large-threads': { type: 'string' },
    'no-large': { type: 'boolean' },
  },
});
if (values.child !== undefined) {
  child({
    model: values.child,
    layers: Number(values.layers ?? 0),
    mode: values.mode === 'lora' ? 'lora' : 'full',
    threads: Number(values.threads ?? 1),
    batch: Number(values.batch ?? 8),
    seq: Number(values.seq ?? 128),
    warmup: Number(values.warmup ?? 3),
    steps: Number(values.steps ?? 20),
  }).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
} else {
  main({
    steps: Number(values.steps ?? 20),
    largeLayers: Number(values['large-layers'] ?? 24),
    largeSeq: Number(values['large-seq'] ?? 64),
    largeSteps: Number(values['large-steps'] ?? 2),
    largeThreads: Number(values['large-threads'] ?? 1),
    large: values['no-large'] !== true,
  });
}
