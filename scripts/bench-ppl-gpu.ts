/**
 * Perplexity throughput on a real GPU (`npm run bench:ppl-gpu -- DIR [DIR ...]`; not a test): our
 * engine (WGSL through Dawn in Node, as `dem ppl` runs it) against Hugging Face transformers on
 * PyTorch/CUDA in float32 (scripts/bench_ppl_hf.py), on the same checkpoint, text, windows and
 * batch, in one run on one device. Both NLLs are printed: they must agree before the speeds mean
 * anything. The checkpoints are typically `scripts/make-fixtures.ts --large` ones.
 * Env: TEXT (default e2e/fixtures/texts/prose.txt), CONTEXT (1024), BATCH (1), REPS (5), PY
 * (python3), BENCH_OUT (bench-results/ppl-gpu.json).
 */
import { spawnSync } from 'node:child_process';
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
const REPS = Number(process.env.REPS ?? 5);
const PY = process.env.PY ?? 'python3';
const PROFILE = process.env.PROFILE !== '0';

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

async function ours(dir: string): Promise<Ours> {
  const rt = await createNodeRuntime({ label: 'bench-ppl-gpu' });
  try {
    const ws = new Workspace({ runtime: async () => rt });
    await ws.open(dir, basename(dir), await folderFileSet(dir));
    const texts = tokenizeTexts(await ws.tokenizer(dir), [{ label: TEXT, text: readFileSync(TEXT, 'utf8') }]);
    const context = CONTEXT;
    const info = (rt.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    const loaded = await ws.load({ version: 1, method: DEFAULT_METHOD, base: dir, models: [], parameters: {} }, { context, batchWindows: BATCH });
    try {
      const run = async (): Promise<{ nll: number; predicted: number }> => {
        const [r] = await evaluateTexts(loaded.model, texts, { context, batchWindows: BATCH });
        return { nll: r!.nllMean, predicted: r!.predicted };
      };
      const first = await run(); // warm-up: pipelines compiled, buffers touched
      const seconds: number[] = [];
      for (let i = 0; i < REPS; i++) {
        const t0 = performance.now();
        await run();
        seconds.push((performance.now() - t0) / 1000);
      }
      const profile =
        PROFILE && rt.device.features.has('timestamp-query') ? aggregate(await timestampPasses(rt, run)) : undefined;
      return {
        profile,
        nllMean: first.nll,
        predicted: first.predicted,
        seconds,
        tokensPerSecond: first.predicted / median(seconds),
        adapter: { vendor: info?.vendor ?? '', architecture: info?.architecture ?? '', description: info?.description ?? '' },
      };
    } finally {
      loaded.destroy();
    }
  } finally {
    rt.destroy();
  }
}

function torch(dir: string): Side & { torch: string; device: string } {
  const r = spawnSync(PY, [join(ROOT, 'scripts/bench_ppl_hf.py'), '--model', dir, '--text', TEXT, '--context', String(CONTEXT), '--batch', String(BATCH), '--reps', String(REPS)], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`bench_ppl_hf.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Side & { torch: string; device: string };
}

async function main(): Promise<void> {
  const dirs = process.argv.slice(2).map((d) => resolve(d));
  if (dirs.length === 0) throw new Error('usage: bench-ppl-gpu.ts MODEL_DIR [MODEL_DIR ...]');
  const rows = [];
  for (const dir of dirs) {
    const a = await ours(dir);
    const b = torch(dir);
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
    timing: `median of ${REPS} full passes over the text after one warm-up pass; tokens = predicted tokens`,
    rows,
  };
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

await main();
