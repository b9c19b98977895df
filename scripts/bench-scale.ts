/**
 * Real sizes (`npm run bench:scale`; not a test): for each shape, a random-weight base with the
 * real model's shapes and config (scripts/realistic.ts) and four BF16 fine-tunes of it, evaluated
 * through the studio's interactive path (the Workspace with resident merges), exact and with
 * compressed Δ (int8 blocks; the runtime's budget is set just below the exact plan so the plan
 * picks it, as it would for a user). Per run: the peak GPU memory the runtime counted (every
 * buffer), the plan's bound, the time to load (checkpoints opened → first perplexities), and the
 * time from a coefficient change to all perplexities updated (median of several changes), over
 * four texts of 512 tokens (context 512); and the perplexity difference exact vs compressed.
 *
 *   npm run bench:scale                  full size: qwen2.5-0.5b and llama-3.2-1b (needs a real GPU
 *                                        with ≥ 16 GB; writes ~15 GB of checkpoints to --dir)
 *   npm run bench:scale -- --smoke       smollm2-135m with 1 layer, 2 texts of 32 tokens: proves the
 *                                        script anywhere (SwiftShader); BENCH_SMOKE=1 does the same
 * Options: --shapes a,b  --layers N  --finetunes N  --texts N  --tokens N  --dir DIR (checkpoints are
 * kept there and reused)  --out FILE (default BENCH_OUT, else bench-results/scale.json, or
 * scale-smoke.json). scripts/gpu/run.sh runs the esbuild bundle of this file from the repository root.
 * Targets (issue): 1B with four fine-tunes exact ≤ 16 GB and compressed ≤ 10 GB; 0.5B exact ≤ 8 GB.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatBytes, loadTokenizer, Workspace, type GpuRuntime, type MergeRecipe } from '../src/engine/index.ts';
import { createNodeRuntime } from '../src/node/gpu.ts';
import { folderFileSet } from '../src/node/files.ts';
import { REAL_SHAPES, writeRealistic } from './realistic.ts';

// The repository: this file's parent folder, or (bundled into .gpu/bin by scripts/gpu/bundle.sh) the working directory.
const ROOT = [join(dirname(fileURLToPath(import.meta.url)), '..'), process.cwd()].find((d) => existsSync(join(d, 'e2e/fixtures/tiny-qwen2/tokenizer.json'))) ?? process.cwd();
const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean' },
    shapes: { type: 'string' },
    layers: { type: 'string' },
    finetunes: { type: 'string' },
    texts: { type: 'string' },
    tokens: { type: 'string' },
    changes: { type: 'string' },
    dir: { type: 'string' },
    out: { type: 'string' },
  },
});
const smoke = values.smoke ?? process.env.BENCH_SMOKE === '1';
const shapes = (values.shapes ?? (smoke ? 'smollm2-135m' : 'qwen2.5-0.5b,llama-3.2-1b')).split(',');
const layersArg = values.layers ? Number(values.layers) : smoke ? 1 : undefined;
const N = Number(values.finetunes ?? 4);
const TEXTS = Number(values.texts ?? (smoke ? 2 : 4));
const TOKENS = Number(values.tokens ?? (smoke ? 32 : 512));
const CHANGES = Number(values.changes ?? (smoke ? 2 : 5));
const dir = values.dir ?? join(tmpdir(), 'dem-bench-scale');
const out = values.out ?? process.env.BENCH_OUT ?? join(ROOT, 'bench-results', smoke ? 'scale-smoke.json' : 'scale.json');
const TARGETS: Record<string, { exact?: number; compressed?: number }> = {
  'qwen2.5-0.5b': { exact: 8e9 },
  'llama-3.2-1b': { exact: 16e9, compressed: 10e9 },
};

const tokenizerJson = readFileSync(join(ROOT, 'e2e/fixtures/tiny-qwen2/tokenizer.json'), 'utf8');
const corpus = ['prose', 'code'].map((f) => readFileSync(join(ROOT, `e2e/fixtures/texts/${f}.txt`), 'utf8'));

/** K texts of exactly `tokens` tokens (the longest prefix of a repeated fixture text that encodes to that many). */
async function makeTexts(): Promise<string[]> {
  const tokenizer = await loadTokenizer(JSON.parse(tokenizerJson) as unknown, 'tokenizer.json');
  return Array.from({ length: TEXTS }, (_, k) => {
    const source = corpus[k % corpus.length]!;
    let text = source.slice(k * 37);
    while (tokenizer.encode(text).length < tokens() + 8) text += `\n${source}`;
    let lo = 1;
    let hi = text.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (tokenizer.encode(text.slice(0, mid)).length <= tokens()) lo = mid;
      else hi = mid - 1;
    }
    return text.slice(0, lo);
  });
}
const tokens = (): number => TOKENS;

interface Run {
  residency: 'exact' | 'int8' | 'bf16' | 'streaming';
  approximate?: string;
  budget: number | null;
  planBytes: number | null;
  gpuPeakBytes: number;
  loadS: number;
  changeS: number[];
  changeMedianS: number;
  ppl: number[];
}

async function measure(shape: string, folders: { base: string; finetunes: string[] }, texts: string[], budget: number | undefined, compressed: boolean): Promise<Run> {
  const rt: GpuRuntime = await createNodeRuntime({ label: `bench-scale-${shape}`, memoryBudget: budget });
  try {
    const ws = new Workspace({ runtime: async () => rt, resident: true, compressed });
    const t0 = performance.now();
    await ws.open('base', 'base', await folderFileSet(folders.base));
    for (const [i, f] of folders.finetunes.entries()) await ws.open(`ft${i}`, `ft-${i + 1}`, await folderFileSet(f));
    for (const [i, t] of texts.entries()) await ws.addText(`text${i}`, `text${i}`, t, 'base');
    const recipe = (tick: number): MergeRecipe => ({
      version: 1,
      method: 'task_arithmetic',
      base: 'base',
      models: folders.finetunes.map((_, i) => ({ model: `ft${i}`, parameters: { weight: 0.3 + 0.1 * i + 0.01 * tick } })),
      parameters: { lambda: 1, normalize: false },
    });
    const request = (tick: number) => ({ recipe: recipe(tick), texts: texts.map((_, i) => `text${i}`), context: TOKENS, batchWindows: TEXTS });
    const first = await ws.evaluate(request(0));
    const loadS = (performance.now() - t0) / 1000;
    console.error(`  ${shape} ${first.approximate ?? (first.mode === 'resident' ? 'exact' : first.mode)}: loaded and measured in ${loadS.toFixed(1)} s; peak so far ${formatBytes(rt.memory.peak)}`);
    const changeS: number[] = [];
    let last = first;
    for (let k = 1; k <= CHANGES; k++) {
      const c0 = performance.now();
      last = await ws.evaluate(request(k));
      changeS.push((performance.now() - c0) / 1000);
    }
    const sorted = [...changeS].sort((a, b) => a - b);
    const residency = first.mode === 'resident' ? (first.approximate ?? 'exact') : 'streaming';
    return {
      residency,
      ...(first.approximate ? { approximate: first.approximate } : {}),
      budget: budget ?? null,
      planBytes: first.plan.choice?.bytes ?? null,
      gpuPeakBytes: rt.memory.peak,
      loadS,
      changeS,
      changeMedianS: sorted[Math.floor(sorted.length / 2)] ?? 0,
      ppl: last.texts.map((t) => t.ppl),
    };
  } finally {
    rt.destroy();
  }
}

async function main(): Promise<void> {
  const texts = await makeTexts();
  const probe = await createNodeRuntime({ label: 'bench-scale-probe' });
  const info = (probe.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const device = { vendor: info?.vendor ?? '', architecture: info?.architecture ?? '', description: info?.description ?? '', maxBufferSize: probe.limits.maxBufferSize, maxStorageBufferBindingSize: probe.limits.maxStorageBufferBindingSize };
  probe.destroy();
  console.error(`device: ${device.vendor} ${device.architecture} ${device.description}; shapes ${shapes.join(', ')}; ${N} BF16 fine-tunes; ${TEXTS} texts × ${TOKENS} tokens`);
  const results = [];
  for (const shape of shapes) {
    const real = REAL_SHAPES[shape];
    if (!real) throw new Error(`unknown shape ${shape}`);
    const layers = layersArg ?? real.layers;
    const folder = join(dir, `${shape}-L${layers}-N${N}`);
    const folders = { base: join(folder, 'base'), finetunes: Array.from({ length: N }, (_, i) => join(folder, `ft-${i + 1}`)) };
    if (![folders.base, ...folders.finetunes].every((f) => existsSync(join(f, 'model.safetensors')))) {
      const g0 = performance.now();
      mkdirSync(folder, { recursive: true });
      const written = writeRealistic(folder, shape, { layers, finetunes: N, tokenizer: tokenizerJson });
      console.error(`  wrote ${shape} (${layers} layers) and ${N} fine-tunes: ${formatBytes(written.bytes)} in ${((performance.now() - g0) / 1000).toFixed(0)} s`);
    }
    const exact = await measure(shape, folders, texts, undefined, false);
    // The budget just below the exact plan: the plan then keeps compressed Δ (as for a user whose GPU is that size).
    const compressed = exact.planBytes ? await measure(shape, folders, texts, exact.planBytes - 1, true) : undefined;
    const pplDiff = compressed ? exact.ppl.map((p, i) => (compressed.ppl[i]! - p) / p) : [];
    const target = TARGETS[shape] ?? {};
    results.push({
      shape,
      layers,
      fullDepth: layers === real.layers,
      params: real.params,
      omittedConfig: real.omitted,
      exact,
      compressed,
      pplRelativeDifference: pplDiff,
      targets: {
        exact: target.exact === undefined ? null : { bytes: target.exact, met: exact.gpuPeakBytes <= target.exact },
        compressed: target.compressed === undefined || !compressed ? null : { bytes: target.compressed, met: compressed.gpuPeakBytes <= target.compressed },
      },
    });
    const row = (r: Run | undefined): string => (r ? `${r.residency.padEnd(9)} peak ${formatBytes(r.gpuPeakBytes).padStart(10)} (plan ${formatBytes(r.planBytes ?? 0)}), load ${r.loadS.toFixed(1)} s, coefficient change → ${TEXTS} perplexities ${r.changeMedianS.toFixed(3)} s` : 'n/a');
    console.log(`${shape} (${layers}/${real.layers} layers, ${N} fine-tunes):\n  ${row(exact)}\n  ${row(compressed)}\n  ppl exact ${exact.ppl.map((p) => p.toFixed(3)).join(', ')}; compressed − exact (relative) ${pplDiff.map((d) => d.toExponential(2)).join(', ')}`);
  }
  const software = /swiftshader|llvmpipe/i.test(`${device.vendor} ${device.architecture} ${device.description}`);
  const json = {
    bench: 'scale',
    ...(software ? { note: 'no GPU at hand: a software rasteriser (CPU); the timings say nothing of a GPU, and the reduced sizes do not test the targets' } : {}),
    when: new Date().toISOString(),
    smoke,
    device,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '', memory: totalmem() },
    settings: { finetunes: N, dtype: 'BF16', texts: TEXTS, tokens: TOKENS, context: TOKENS, changes: CHANGES, method: 'task_arithmetic' },
    results,
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

await main();
