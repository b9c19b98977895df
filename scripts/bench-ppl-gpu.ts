/**
 * Perplexity throughput on a real GPU (`npm run bench:ppl-gpu -- DIR [DIR ...]`; not a test): our
 * engine (WGSL through Dawn in Node, as `dem ppl` runs it) against Hugging Face transformers on
 * PyTorch/CUDA in float32 (scripts/bench_ppl_hf.py --serve, TF32 off), on the same checkpoint,
 * text, windows and batch, in one run on one device. After one warm-up pass each, the timed passes
 * are interleaved (ours, theirs, theirs, ours, ...: each round swaps who goes first), REPS (≥ 5)
 * of each, and each side's median is reported: transformers varies run to run, and load on the
 * machine then hits both alike. Both NLLs are printed: they must agree before the speeds mean
 * anything. With PROFILE (default on) and timestamp queries, one more pass of ours records GPU
 * time per kernel (Dawn's timestamp quantisation off through DEM_DAWN_FLAGS unless set).
 * The checkpoints are typically `scripts/make-fixtures.ts --large` ones.
 * Env: TEXT (default e2e/fixtures/texts/prose.txt), CONTEXT (1024), BATCH (1), REPS (5), PY
 * (python3), BENCH_OUT (bench-results/ppl-gpu.json), PROFILE=0.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { aggregate, timestampPasses } from './bench-ppl/timestamps.ts';
import { basename, dirname, join, resolve } from 'node:path';
import { DEFAULT_METHOD, evaluateTexts, tokenizeTexts, Workspace } from '../src/engine/index.ts';
import { folderFileSet } from '../src/node/files.ts';
import { createNodeRuntime } from '../src/node/gpu.ts';

// Run from the repository root (npm run does).
const ROOT = process.cwd();
const TEXT = resolve(process.env.TEXT ?? join(ROOT, 'e2e/fixtures/texts/prose.txt'));
const CONTEXT = Number(process.env.CONTEXT ?? 1024);
const BATCH = Number(process.env.BATCH ?? 1);
const REPS = Math.max(5, Number(process.env.REPS ?? 5));
const PY = process.env.PY ?? 'python3';
const PROFILE = process.env.PROFILE !== '0';
// Before the Dawn instance exists (src/node/gpu.ts reads it once).
if (PROFILE) process.env.DEM_DAWN_FLAGS ??= 'disable-dawn-features=timestamp_quantization';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Side {
  nllMean: number;
  predicted: number;
  seconds: number[];
  tokensPerSecond: number;
}

interface Ours extends Side {
  adapter: { vendor: string; architecture: string; description: string };
  /** GPU time per kernel over one pass (timestamp queries), when the device has them. */
  profile?: ReturnType<typeof aggregate>;
}

/** A pass-by-pass runner: `pass` times one full pass over the text; `close` frees it. */
interface Runner {
  nllMean: number;
  predicted: number;
  pass(): Promise<number>;
  close(): Promise<void>;
}

async function oursRunner(dir: string): Promise<Runner & { adapter: Ours['adapter']; profile(): Promise<Ours['profile']> }> {
  const rt = await createNodeRuntime({ label: 'bench-ppl-gpu' });
  const ws = new Workspace({ runtime: async () => rt });
  await ws.open(dir, basename(dir), await folderFileSet(dir));
  const texts = tokenizeTexts(await ws.tokenizer(dir), [{ label: TEXT, text: readFileSync(TEXT, 'utf8') }]);
  const context = CONTEXT;
  const info = (rt.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const loaded = await ws.load({ version: 1, method: DEFAULT_METHOD, base: dir, models: [], parameters: {} }, { context, batchWindows: BATCH });
  const run = async (): Promise<{ nll: number; predicted: number }> => {
    const [r] = await evaluateTexts(loaded.model, texts, { context, batchWindows: BATCH });
    return { nll: r!.nllMean, predicted: r!.predicted };
  };
  const first = await run(); // warm-up: pipelines compiled, plans built, buffers touched
  return {
    nllMean: first.nll,
    predicted: first.predicted,
    adapter: { vendor: info?.vendor ?? '', architecture: info?.architecture ?? '', description: info?.description ?? '' },
    pass: async () => {
      const t0 = performance.now();
      await run();
      return (performance.now() - t0) / 1000;
    },
    profile: async () => (PROFILE && rt.device.features.has('timestamp-query') ? aggregate(await timestampPasses(rt, run)) : undefined),
    close: async () => {
      loaded.destroy();
      rt.destroy();
    },
  };
}

/** scripts/bench_ppl_hf.py --serve: loads and warms up, then times one pass per "run" line. */
async function torchRunner(dir: string): Promise<Runner & { torch: string; device: string }> {
  const child = spawn(PY, [join(ROOT, 'scripts/bench_ppl_hf.py'), '--model', dir, '--text', TEXT, '--context', String(CONTEXT), '--batch', String(BATCH), '--serve'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const line = await lines.next();
    if (line.done) throw new Error(`bench_ppl_hf.py ended early (${child.exitCode}): ${stderr}`);
    return JSON.parse(line.value) as Record<string, unknown>;
  };
  const head = (await next()) as { nllMean: number; predicted: number; torch: string; device: string };
  return {
    ...head,
    pass: async () => {
      child.stdin.write('run\n');
      return (await next()).seconds as number;
    },
    close: async () => {
      child.stdin.end('quit\n');
      await new Promise((resolve) => child.once('close', resolve));
    },
  };
}

async function measure(dir: string): Promise<{ ours: Ours; transformers: Side & { torch: string; device: string } }> {
  const a = await oursRunner(dir);
  try {
    const b = await torchRunner(dir);
    try {
      const sa: number[] = [];
      const sb: number[] = [];
      for (let i = 0; i < REPS; i++) {
        if (i % 2 === 0) {
          sa.push(await a.pass());
          sb.push(await b.pass());
        } else {
          sb.push(await b.pass());
          sa.push(await a.pass());
        }
      }
      const profile = await a.profile();
      return {
        ours: { nllMean: a.nllMean, predicted: a.predicted, seconds: sa, tokensPerSecond: a.predicted / median(sa), adapter: a.adapter, profile },
        transformers: { nllMean: b.nllMean, predicted: b.predicted, seconds: sb, tokensPerSecond: b.predicted / median(sb), torch: b.torch, device: b.device },
      };
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}

async function main(): Promise<void> {
  const dirs = process.argv.slice(2).map((d) => resolve(d));
  if (dirs.length === 0) throw new Error('usage: bench-ppl-gpu.ts MODEL_DIR [MODEL_DIR ...]');
  const rows = [];
  for (const dir of dirs) {
    const { ours: a, transformers: b } = await measure(dir);
    const row = { model: dir, context: CONTEXT, batch: BATCH, ours: a, transformers: b, nllRelativeDifference: Math.abs(a.nllMean - b.nllMean) / Math.abs(b.nllMean), oursOverTransformers: a.tokensPerSecond / b.tokensPerSecond };
    rows.push(row);
    if (a.profile) {
      const top = a.profile.kernels.slice(0, 8).map((k) => `${k.kernel} ${k.ms.toFixed(1)} ms ×${k.count}`);
      console.log(`  ours GPU time by kernel (${a.profile.totalMs.toFixed(1)} ms in one pass): ${top.join(', ')}`);
    }
    console.log(
      `${dir.split('/').pop()}: ours ${a.tokensPerSecond.toFixed(0)} tok/s (nll ${a.nllMean.toFixed(6)}), transformers ${b.tokensPerSecond.toFixed(0)} tok/s ` +
        `(nll ${b.nllMean.toFixed(6)}, ${b.device}); ours/transformers ${row.oursOverTransformers.toFixed(3)}; nll rel. diff ${row.nllRelativeDifference.toExponential(1)}`,
    );
  }
  const out = process.env.BENCH_OUT ?? join(ROOT, 'bench-results', 'ppl-gpu.json');
  mkdirSync(dirname(out), { recursive: true });
  const json = {
    benchmark: 'validation perplexity tokens/s: ours (WGSL via Dawn, Node) vs Hugging Face transformers (PyTorch CUDA, float32)',
    date: new Date().toISOString(),
    text: TEXT,
    timing: `median of ${REPS} full passes over the text per side after one warm-up pass each, the two sides' passes interleaved (each round swaps who goes first); tokens = predicted tokens`,
    rows,
  };
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

await main();
