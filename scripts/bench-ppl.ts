/**
 * Perplexity throughput benchmark (`npm run bench:ppl`; not a test). In ONE headless Chromium
 * (Debian's, --enable-unsafe-webgpu, driven by Playwright) it scores the same token windows with
 * the same F32 weights on three engines and reports tokens/s:
 *   ours        GpuModel (src/engine/model/forward.ts), WebGPU
 *   ort-webgpu  onnxruntime-web 1.19.2, WebGPU execution provider
 *   ort-wasm    onnxruntime-web 1.19.2, wasm execution provider (SIMD, threads = cores)
 * for (a) a GPT-2-small-shaped model (12 layers, 768 wide, 12 heads, V = 50257, 1024 positions,
 * random weights from a fixed seed) and (b) the tiny-gpt2 fixture (e2e/fixtures/tiny-gpt2).
 * Each engine is set up and runs once (warm-up); its mean NLL must equal the first engine's
 * within TOLERANCE (relative) before it is timed. Then the timed runs go round-robin over the
 * engines (one run each per round), so load from other work on a shared machine hits all alike;
 * the median per engine is reported. tokens/s = B·T window tokens / median seconds of one
 * forward over all B windows (NLL of B·(T−1) predicted tokens).
 * With PROFILE=1 (default) the warm-up run of the GPU engines also records per-kernel GPU time
 * (ours: timestamp queries on every compute pass; ORT: its env.webgpu.profiling).
 *
 * On this project's CI-class machine WebGPU is SwiftShader on 2 CPU cores (≲ 1 GFLOP/s matmul,
 * less when the machine is shared): GPT-2 small at T = 64 is ~16 GFLOP per forward (40-80 s for
 * ours, 75-120 s for ORT's WebGPU EP, ~2.5 s for its wasm EP, under load), so the defaults keep
 * the whole run near 10 minutes: small B = 1, T = 64, 3 rounds; tiny B = 8, T = 64, 5 rounds;
 * after 2 rounds a case stops once its rounds have taken TIMED_BUDGET_S (250 s). T = 128/256
 * would take 2-4x as long. Overrides: SMALL_CONTEXT, SMALL_BATCH, SMALL_REPS, TINY_CONTEXT,
 * TINY_BATCH, TINY_REPS, TIMED_BUDGET_S, PROFILE=0, CASES=small,tiny, ENGINES=ours,ort-webgpu,ort-wasm, PORT.
 * Writes bench-results/ppl.json and prints a table.
 */
import { chromium } from '@playwright/test';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';
import type * as PageModule from './bench-ppl/page.ts';
import type { CaseResult, CaseSpec, EngineName, EngineResult, PageInfo } from './bench-ppl/types.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../e2e/helpers/chromium.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = (k: string, d: number): number => (process.env[k] ? Number(process.env[k]) : d);
const PORT = env('PORT', 5187);
const PROFILE = process.env.PROFILE !== '0';
const TOLERANCE = 1e-4;
const ENGINES = (process.env.ENGINES ?? 'ours,ort-webgpu,ort-wasm').split(',') as EngineName[];
const CASES = (process.env.CASES ?? 'small,tiny').split(',');

/** GPT-2 small's config.json (openai-community/gpt2), weights drawn at random. */
const GPT2_SMALL = {
  model_type: 'gpt2',
  activation_function: 'gelu_new',
  n_embd: 768,
  n_head: 12,
  n_layer: 12,
  n_positions: 1024,
  n_inner: null,
  vocab_size: 50257,
  layer_norm_epsilon: 1e-5,
  tie_word_embeddings: true,
  torch_dtype: 'float32',
};

function cases(threads: number): CaseSpec[] {
  const common = { timedBudgetMs: 1000 * env('TIMED_BUDGET_S', 250), engines: ENGINES, profile: PROFILE, tolerance: TOLERANCE, wasmThreads: threads, windowSeed: 20240601 };
  const all: Record<string, CaseSpec> = {
    small: { ...common, name: 'gpt2-small-random', model: { kind: 'random', config: GPT2_SMALL, seed: 1234 }, batch: env('SMALL_BATCH', 1), context: env('SMALL_CONTEXT', 64), reps: env('SMALL_REPS', 3) },
    tiny: { ...common, name: 'tiny-gpt2', model: { kind: 'fixture', folder: '/e2e/fixtures/tiny-gpt2/' }, batch: env('TINY_BATCH', 8), context: env('TINY_CONTEXT', 64), reps: env('TINY_REPS', 5) },
  };
  return CASES.map((k) => {
    const c = all[k];
    if (!c) throw new Error(`unknown case '${k}' (small, tiny)`);
    return c;
  });
}

const fmt = (x: number | undefined, digits = 1): string => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits));

function table(results: CaseResult[]): string {
  const rows: string[][] = [['case', '(B, T)', 'engine', 'tokens/s', 'median s', 'warm-up s', 'setup s', 'mean NLL', 'rel diff', 'ours / this']];
  for (const c of results) {
    const ours = c.engines.find((e) => e.engine === 'ours');
    for (const e of c.engines) {
      const ratio = ours?.tokensPerSec && e.tokensPerSec ? (ours.tokensPerSec / e.tokensPerSec).toFixed(2) + 'x' : '—';
      rows.push([
        c.name,
        `(${c.batch}, ${c.context})`,
        e.engine,
        e.error ? 'FAILED' : fmt(e.tokensPerSec),
        fmt(e.medianMs && e.medianMs / 1000, 3),
        fmt(e.firstRunMs && e.firstRunMs / 1000, 3),
        fmt(e.setupMs && e.setupMs / 1000, 1),
        fmt(e.nllMean, 6),
        e.relDiffNllMean === undefined ? '—' : e.relDiffNllMean.toExponential(2),
        e.engine === 'ours' ? '' : ratio,
      ]);
    }
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((v, i) => v.padEnd(w[i]!)).join('  ');
  return [line(rows[0]!), w.map((n) => '-'.repeat(n)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

function ratio(c: CaseResult, other: EngineName): number | null {
  const ours = c.engines.find((e) => e.engine === 'ours')?.tokensPerSec;
  const them = c.engines.find((e) => e.engine === other)?.tokensPerSec;
  return ours && them ? ours / them : null;
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = loadavg();
  const server = await createServer({
    root: ROOT,
    configFile: join(ROOT, 'vite.config.ts'),
    logLevel: 'warn',
    // No HMR and no file watching: other work in the same tree must not reload the page mid-run.
    server: { port: PORT, strictPort: true, hmr: false, watch: null },
  });
  await server.listen();
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  const results: CaseResult[] = [];
  const failures: { case: string; error: string }[] = [];
  let info: PageInfo | undefined;
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(0);
    page.on('console', (m) => {
      const t = m.text();
      if (t.startsWith('[bench-ppl]')) console.log(`${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s ${t}`);
      else if (m.type() === 'error' || m.type() === 'warning') console.log(`  page ${m.type()}: ${t.slice(0, 300)}`);
    });
    page.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) console.log(`  page navigated to ${f.url()}`);
    });
    await page.goto(`http://localhost:${PORT}/scripts/bench-ppl/index.html`);
    const url = '/scripts/bench-ppl/page.ts';
    info = await page.evaluate(async (u) => ((await import(/* @vite-ignore */ u)) as typeof PageModule).pageInfo(), url);
    console.log(`adapter: ${JSON.stringify(info.adapter && { vendor: info.adapter.vendor, architecture: info.adapter.architecture, description: info.adapter.description })}, ORT ${info.ortVersion}, cores ${info.hardwareConcurrency}, crossOriginIsolated ${info.crossOriginIsolated}`);
    for (const c of cases(info.hardwareConcurrency)) {
      try {
        results.push(await page.evaluate(async ({ u, spec }) => ((await import(/* @vite-ignore */ u)) as typeof PageModule).runCase(spec), { u: url, spec: c }));
      } catch (e) {
        failures.push({ case: c.name, error: e instanceof Error ? e.message.split('\n')[0]! : String(e) });
        console.log(`${c.name}: FAILED ${failures.at(-1)!.error}`);
        if (page.isClosed()) break;
        await page.goto(`http://localhost:${PORT}/scripts/bench-ppl/index.html`);
      }
    }
  } finally {
    await browser.close();
    await server.close();
  }

  const slim = (e: EngineResult): EngineResult => ({ ...e, perWindow: e.perWindow && e.perWindow.length > 16 ? undefined : e.perWindow, profile: e.profile?.slice(0, 20) });
  const report = {
    benchmark: 'perplexity tokens/s: ours (GpuModel, WebGPU) vs onnxruntime-web WebGPU EP vs onnxruntime-web wasm EP, same weights and windows, one headless Chromium',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memoryGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, loadAverage1mBefore: +loadBefore[0]!.toFixed(2), loadAverage1mAfter: +loadavg()[0]!.toFixed(2) },
    browser: { version: browser.version(), args: CHROMIUM_ARGS, ...info },
    method: {
      tokensPerSec: 'B·T window tokens / median seconds of one forward scoring all B windows (warm-up excluded); each window predicts its tokens 1..T−1',
      verification: `each engine's warm-up mean NLL vs the first engine's; timed only if the relative difference ≤ ${TOLERANCE}`,
      onnxModel: 'src/engine/train/onnx/inference.ts: the training forward graph (src/engine/train/model.ts) with weights as initializers, output (B, T) per-position NLL; graphOptimizationLevel all',
      timedRuns: `round-robin over the verified engines (all set up at once), up to each case's reps rounds; after 2 rounds a case stops once its rounds took ${env('TIMED_BUDGET_S', 250)} s (runsMs lists them)`,
      profile: 'GPU time per kernel in the warm-up run: ours from timestamp queries on every compute pass, ORT from env.webgpu.profiling',
      wallSeconds: Math.round((Date.now() - started) / 1000),
    },
    cases: results.map((c) => ({ ...c, engines: c.engines.map(slim), ratios: { oursOverOrtWebgpu: ratio(c, 'ort-webgpu'), oursOverOrtWasm: ratio(c, 'ort-wasm') } })),
    failures,
  };
  const out = join(ROOT, 'bench-results', 'ppl.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log('\n' + table(results));
  for (const c of results) {
    const wg = ratio(c, 'ort-webgpu');
    const wa = ratio(c, 'ort-wasm');
    console.log(`${c.name}: ours/ORT-WebGPU ${wg === null ? '—' : wg.toFixed(2) + 'x'}, ours/ORT-wasm ${wa === null ? '—' : wa.toFixed(2) + 'x'}`);
    for (const e of c.engines) {
      if (e.error) console.log(`  ${e.engine} error: ${e.error}`);
      if (e.profile) console.log(`  ${e.engine} GPU time by kernel (${fmt(e.profileTotalMs, 0)} ms): ${e.profile.slice(0, 6).map((k) => `${k.kernel} ${k.ms.toFixed(0)} ms ×${k.count}`).join(', ')}`);
      if (e.profileSequence) console.log(`  ${e.engine} first passes: ${e.profileSequence.map((p) => `${p.kernel}[${p.grid}] ${p.ms.toFixed(0)}`).join(', ')}`);
    }
  }
  console.log(`\nwrote ${out} (${report.method.wallSeconds} s)`);
}

await main();
