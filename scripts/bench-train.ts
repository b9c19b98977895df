/**
 * `npm run bench:train` (a benchmark, not a test): training tokens/s of onnxruntime-web's
 * training wasm (the engine's Trainer, in Node) against PyTorch on the CPU
 * (scripts/bench-train-torch.py: same model, batch, sequence length, AdamW), each with one
 * thread and with all cores, measured in the same run, alternating ORT and torch per setting
 * so both see the same machine load. Writes bench-results/train.json and prints a table.
 *
 * ORT's thread count is fixed when its wasm starts, so every measurement runs in a fresh child
 * process (`--child`).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint, bytesSource, Trainer, type OrtTrainingModule } from '../src/engine/index.ts';
import { configJson, initCheckpoint, paramCount, type ModelShape } from './demo/init.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const DIST = join(ROOT, 'node_modules/onnxruntime-web-training/dist/');

const MODELS: Record<string, ModelShape> = {
  'tiny-gpt2': { family: 'gpt2', L: 2, C: 64, NH: 4, P: 128 },
  'tiny-llama': { family: 'llama', L: 2, C: 64, NH: 4, NKV: 2, FF: 176, P: 128 },
};
const B = 8;
const T = 128;
const WARMUP = 3;
const STEPS = 20;
const LR = 1e-3;

interface Measurement {
  tokensPerSecond: number;
  msPerStep: number;
  threads: number;
}

/** In a child process: ORT with `threads` threads trains `model` for WARMUP + STEPS steps. */
async function child(model: string, threads: number): Promise<void> {
  const ort = (await import(join(DIST, 'ort.training.wasm.min.mjs'))) as OrtTrainingModule & { env: { wasm: { numThreads: number; wasmPaths: string } } };
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = DIST;
  const files = initCheckpoint(MODELS[model]!, 1);
  const ckpt = await openCheckpoint(new Map([...files].map(([k, v]) => [k, bytesSource(v, k)])), model);
  // Random bytes: speed does not depend on the text.
  let x = 12345;
  const tokens = Array.from({ length: (WARMUP + STEPS + 2) * B * (T + 1) }, () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 16) % 256);
  const trainer = await Trainer.create(ort, ckpt, tokens, {
    steps: WARMUP + STEPS, batchSize: B, seqLen: T, lr: LR, warmupSteps: 0, weightDecay: 0, trainable: { kind: 'all' },
    heldOutFraction: 0, evalEvery: 0, snapshotEvery: 0, seed: 1,
  });
  for (let i = 0; i < WARMUP; i++) await trainer.trainStep();
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) await trainer.trainStep();
  const sec = (performance.now() - t0) / 1000;
  await trainer.release();
  const m: Measurement = { tokensPerSecond: (STEPS * B * T) / sec, msPerStep: (1000 * sec) / STEPS, threads };
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

function lastJson<V>(out: string): V {
  const line = out.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (!line) throw new Error(`no result in:\n${out}`);
  return JSON.parse(line) as V;
}

function main(): void {
  const allThreads = cpus().length;
  const dir = mkdtempSync(join(tmpdir(), 'bench-train-'));
  const rows: Record<string, unknown>[] = [];
  const here = new URL(import.meta.url).pathname;
  for (const [name, shape] of Object.entries(MODELS)) {
    const cfgPath = join(dir, `${name}.json`);
    writeFileSync(cfgPath, JSON.stringify(configJson(shape)));
    for (const threads of [...new Set([1, allThreads])]) {
      const ortM = lastJson<Measurement>(
        execFileSync(process.execPath, [...process.execArgv, here, '--child', name, '--threads', String(threads)], { encoding: 'utf8', maxBuffer: 1 << 24 }),
      );
      const torchM = lastJson<Measurement & { framework: string }>(
        execFileSync('/usr/bin/python3', [join(ROOT, 'scripts/bench-train-torch.py'), '--config', cfgPath, '--batch', String(B), '--seq', String(T), '--threads', String(threads), '--warmup', String(WARMUP), '--steps', String(STEPS), '--lr', String(LR)], { encoding: 'utf8' }),
      );
      const row = {
        model: name,
        parameters: paramCount(shape),
        threads,
        ortTokensPerSecond: Math.round(ortM.tokensPerSecond),
        torchTokensPerSecond: Math.round(torchM.tokensPerSecond),
        ratio: Number((ortM.tokensPerSecond / torchM.tokensPerSecond).toFixed(3)),
        ortMsPerStep: Number(ortM.msPerStep.toFixed(1)),
        torchMsPerStep: Number(torchM.msPerStep.toFixed(1)),
        torch: torchM.framework,
      };
      rows.push(row);
      console.log(`${name} threads ${threads}: ORT ${row.ortTokensPerSecond} tok/s, torch ${row.torchTokensPerSecond} tok/s, ratio ${row.ratio}`);
    }
  }
  const result = {
    benchmark: 'training tokens/s: onnxruntime-web 1.19.2 training wasm (Node, engine Trainer) vs PyTorch CPU (scripts/bench-train-torch.py)',
    setting: { batch: B, seqLen: T, warmupSteps: WARMUP, timedSteps: STEPS, optimizer: `AdamW lr ${LR}, betas (0.9, 0.999), eps 1e-8, weight decay 0`, dtype: 'float32', data: 'random byte tokens' },
    models: Object.fromEntries(Object.entries(MODELS).map(([k, v]) => [k, { ...configJson(v), parameters: paramCount(v) }])),
    machine: { cpus: allThreads, cpuModel: cpus()[0]?.model ?? '', node: process.version, loadAverageAtEnd: loadavg().map((v) => Number(v.toFixed(2))) },
    target: 'ORT >= 0.5x PyTorch',
    results: rows,
    measuredAt: new Date().toISOString(),
  };
  mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench-results', 'train.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\n${'model'.padEnd(12)}${'threads'.padStart(8)}${'ORT tok/s'.padStart(12)}${'torch tok/s'.padStart(13)}${'ORT/torch'.padStart(11)}`);
  for (const r of rows as { model: string; threads: number; ortTokensPerSecond: number; torchTokensPerSecond: number; ratio: number }[]) {
    console.log(`${r.model.padEnd(12)}${String(r.threads).padStart(8)}${String(r.ortTokensPerSecond).padStart(12)}${String(r.torchTokensPerSecond).padStart(13)}${r.ratio.toFixed(2).padStart(11)}`);
  }
  console.log('\nwritten to bench-results/train.json (machine load shown there: other work on the machine slows both sides)');
}

const { values } = parseArgs({ options: { child: { type: 'string' }, threads: { type: 'string' } } });
if (values.child !== undefined) {
  child(values.child, Number(values.threads ?? 1)).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
} else main();
