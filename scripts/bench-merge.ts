/**
 * Merge bandwidth benchmark (`npm run bench:merge`; not a test). On ≥ 256 MiB of synthetic F32
 * weights in realistic tensor shapes, task_arithmetic with N = 3 and N = 8 distribution vectors,
 * all measured in the same run on the same device:
 *   copy       copyBufferToBuffer of the base into the outputs (the bandwidth ceiling)
 *   resident   the interactive path: combineRows over the resident packed Δ (N, n) f32
 *   streaming  the streaming path's GPU work: computeDeltas from the models + combine (measured
 *              on the tensors under 8 Mi elements, 47.6 MiB per model, to keep the run short)
 *   cpu        a plain TypeScript loop, out = θ + Σ c_r Δ_r, on Float32Arrays
 * GB/s = bytes read + written by the kernel (1e9 bytes/s): copy 2·4n, resident (N+2)·4n,
 * streaming (N+2)·4n useful (θ, N models in, out) and (3N+2)·4n actual (Δ written and read back),
 * cpu (N+2)·4n. A warm-up pass over the small tensors, then REPS repetitions (STREAM_REPS for
 * the slow streaming path); the median is reported. Writes bench-results/merge.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GpuRuntime } from '../src/engine/gpu/runtime.ts';
import { computeDeltas } from '../src/engine/kernels/mergeDeltas.ts';
import { getMethod } from '../src/engine/merge/registry.ts';
import { createNodeRuntime } from '../src/node/gpu.ts';

const MiB = 2 ** 20;
const REPS = Number(process.env.REPS ?? 3);
// The streaming path is the slowest by far on SwiftShader; fewer repetitions keep the run short.
const STREAM_REPS = Number(process.env.STREAM_REPS ?? 2);
const COUNTS = (process.env.COUNTS ?? '3,8').split(',').map(Number);
// A slice of a 7B-class decoder layer plus an embedding block: 261.6 MiB of F32.
const SHAPES: number[][] = [
  [4096, 4096], // q_proj
  [4096, 4096], // o_proj
  [5504, 2048], // up (half width)
  [2048, 5504], // down (half width)
  [1024, 4096], // k_proj (GQA)
  [1024, 4096], // v_proj (GQA)
  [32000, 128], // embedding block
  [4096], // norm
  [4096], // norm
  [11], // awkward tail
];

interface Tensor {
  n: number;
  base: Float32Array;
  deltas: Float32Array[];
}

/** Fast deterministic fill (an LCG; the values only need to be non-trivial). */
function fill(a: Float32Array, seed: number, scale: number): void {
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296 - 0.5) * scale;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Median seconds of `run(all tensors)` over `reps` repetitions, after a warm-up on the small
 * tensors only (compiles the pipelines and touches the code paths without a full pass).
 */
async function time(run: (warm: boolean) => Promise<void>, reps = REPS): Promise<{ median: number; all: number[] }> {
  await run(true);
  const all: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run(false);
    all.push((performance.now() - t0) / 1000);
  }
  return { median: median(all), all };
}

/** The tensors a run covers: all, or for the warm-up the small ones (under 1 Mi elements). */
function subset<T extends { n: number }>(tensors: T[], warm: boolean): [number, T][] {
  return [...tensors.entries()].filter(([, t]) => !warm || t.n < 2 ** 20);
}

/**
 * The streaming path's tensors: those under 8 Mi elements (k/v projections, embedding block,
 * norms: 47.6 MiB per model). Its bandwidth is a rate; measuring it on every tensor would take
 * minutes on SwiftShader.
 */
const STREAM_MAX_ELEMENTS = 8 * 2 ** 20;
function streamSubset<T extends { n: number }>(tensors: T[], warm: boolean): [number, T][] {
  return subset(tensors, warm).filter(([, t]) => t.n < STREAM_MAX_ELEMENTS);
}

function cpuMerge(tensors: Tensor[], outs: Float32Array[], coef: Float32Array, warm: boolean): void {
  const N = coef.length;
  for (const [k, t] of subset(tensors, warm)) {
    const out = outs[k]!;
    const { base, deltas } = t;
    for (let i = 0; i < t.n; i++) {
      let s = 0;
      for (let r = 0; r < N; r++) s += coef[r]! * deltas[r]![i]!;
      out[i] = base[i]! + s;
    }
  }
}

async function benchN(rt: GpuRuntime, N: number): Promise<Record<string, unknown>> {
  const method = getMethod('task_arithmetic');
  const weights = Array.from({ length: N }, (_, r) => 0.1 + 0.05 * r);
  const tensors: Tensor[] = [];
  const gpuBase: GPUBuffer[] = [];
  const gpuModels: GPUBuffer[][] = [];
  const gpuOut: GPUBuffer[] = [];
  let t0 = performance.now();
  for (const [k, shape] of SHAPES.entries()) {
    const n = shape.reduce((a, b) => a * b, 1);
    const base = new Float32Array(n);
    fill(base, 17 + k, 0.2);
    const deltas = Array.from({ length: N }, (_, r) => {
      const d = new Float32Array(n);
      fill(d, 1000 * (r + 1) + k, 0.02);
      return d;
    });
    tensors.push({ n, base, deltas });
    gpuBase.push(rt.upload(`bench.base${k}`, base));
    const model = new Float32Array(n);
    gpuModels.push(
      deltas.map((d, r) => {
        for (let i = 0; i < n; i++) model[i] = base[i]! + d[i]!;
        return rt.upload(`bench.model${r}.${k}`, model);
      }),
    );
    gpuOut.push(rt.storage(`bench.out${k}`, n * 4));
  }
  await rt.flush();
  const n = tensors.reduce((s, t) => s + t.n, 0);
  console.error(`N = ${N}: ${((n * 4) / MiB).toFixed(1)} MiB of weights per model, data ready in ${((performance.now() - t0) / 1000).toFixed(1)}s`);

  const base = (k: number): { buffer: GPUBuffer; dtype: 'F32' } => ({ buffer: gpuBase[k]!, dtype: 'F32' });
  const copy = await time(async (warm) => {
    const encoder = rt.device.createCommandEncoder({ label: 'bench.copy' });
    for (const [k, t] of subset(tensors, warm)) encoder.copyBufferToBuffer(gpuBase[k]!, 0, gpuOut[k]!, 0, t.n * 4);
    rt.device.queue.submit([encoder.finish()]);
    await rt.flush();
  });
  console.error(`  copy done`);
  const streamElements = streamSubset(tensors, false).reduce((s, [, t]) => s + t.n, 0);
  const streaming = await time(async (warm) => {
    for (const [k, t] of streamSubset(tensors, warm)) {
      const models = gpuModels[k]!.map((buffer) => ({ buffer, dtype: 'F32' as const }));
      await method.gpu(rt, { n: t.n, base: base(k), models, weights, outDtype: 'F32', dst: gpuOut[k] }, { lambda: 1 }, { tensorIndex: k, seed: 0 });
    }
    await rt.flush();
  }, STREAM_REPS);
  console.error(`  streaming done`);
  // The resident Δ, as ResidentMerge.create computes it; the models are not needed after.
  const deltas = tensors.map((t, k) => computeDeltas(rt, base(k), gpuModels[k]!.map((buffer) => ({ buffer, dtype: 'F32' as const })), t.n));
  await rt.flush();
  for (const ms of gpuModels) rt.release(...ms);
  const resident = await time(async (warm) => {
    for (const [k, t] of subset(tensors, warm)) {
      const models = weights.map(() => ({ buffer: deltas[k]!, dtype: 'F32' as const }));
      await method.gpu(rt, { n: t.n, base: base(k), models, weights, outDtype: 'F32', deltas: deltas[k], dst: gpuOut[k] }, { lambda: 1 }, { tensorIndex: k, seed: 0 });
    }
    await rt.flush();
  });
  console.error(`  resident done`);
  // Check the GPU result against the CPU loop on one tensor (same f32 products, summed in order).
  const outs = tensors.map((t) => new Float32Array(t.n));
  const coef = Float32Array.from(weights);
  const cpu = await time(async (warm) => cpuMerge(tensors, outs, coef, warm));
  console.error(`  cpu done`);
  const check = new Float32Array(await rt.read(gpuOut[0]!));
  let worst = 0;
  for (let i = 0; i < check.length; i++) worst = Math.max(worst, Math.abs(check[i]! - outs[0]![i]!));
  rt.release(...gpuBase, ...gpuOut, ...deltas);
  t0 = performance.now();

  const gbs = (bytes: number, s: number): number => bytes / s / 1e9;
  const useful = (N + 2) * 4 * n;
  const row = {
    N,
    elements: n,
    weightBytes: 4 * n,
    streamingWeightBytes: 4 * streamElements,
    seconds: { copy: copy.median, resident: resident.median, streaming: streaming.median, cpu: cpu.median },
    secondsAll: { copy: copy.all, resident: resident.all, streaming: streaming.all, cpu: cpu.all },
    gbPerS: {
      copy: gbs(2 * 4 * n, copy.median),
      resident: gbs(useful, resident.median),
      streamingUseful: gbs((N + 2) * 4 * streamElements, streaming.median),
      streamingActual: gbs((3 * N + 2) * 4 * streamElements, streaming.median),
      cpu: gbs(useful, cpu.median),
    },
    maxAbsDiffGpuVsCpu: worst,
  };
  return {
    ...row,
    ratios: {
      residentOverCopy: row.gbPerS.resident / row.gbPerS.copy,
      streamingActualOverCopy: row.gbPerS.streamingActual / row.gbPerS.copy,
      residentOverCpu: row.gbPerS.resident / row.gbPerS.cpu,
      streamingUsefulOverCpu: row.gbPerS.streamingUseful / row.gbPerS.cpu,
    },
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const rt = await createNodeRuntime({ label: 'bench-merge' });
  const info = (rt.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const device = {
    vendor: info?.vendor ?? 'unknown',
    architecture: info?.architecture ?? 'unknown',
    description: info?.description ?? '',
    maxStorageBufferBindingSize: rt.limits.maxStorageBufferBindingSize,
  };
  const weightBytes = SHAPES.reduce((s, sh) => s + 4 * sh.reduce((a, b) => a * b, 1), 0);
  if (weightBytes < 256 * MiB) throw new Error(`benchmark needs >= 256 MiB of weights, has ${weightBytes}`);
  console.error(`device: ${device.vendor} ${device.architecture} ${device.description}; ${(weightBytes / MiB).toFixed(1)} MiB of F32 weights in ${SHAPES.length} tensors; ${REPS} reps (streaming ${STREAM_REPS}) after a warm-up`);
  const results = [];
  for (const N of COUNTS) results.push(await benchN(rt, N));
  rt.destroy();

  const f = (x: number): string => x.toFixed(2).padStart(7);
  console.log(`\ntask_arithmetic merge bandwidth (GB/s, bytes read + written, median of ${REPS}; streaming ${STREAM_REPS}) on ${device.vendor} ${device.architecture}`);
  console.log('   N     copy  resident  stream(useful)  stream(actual)      cpu   resident/copy  resident/cpu');
  for (const r of results as { N: number; gbPerS: Record<string, number>; ratios: Record<string, number> }[]) {
    const g = r.gbPerS;
    console.log(
      `${String(r.N).padStart(4)}  ${f(g.copy!)}  ${f(g.resident!)}       ${f(g.streamingUseful!)}         ${f(g.streamingActual!)}  ${f(g.cpu!)}         ${f(r.ratios.residentOverCopy!)}       ${f(r.ratios.residentOverCpu!)}`,
    );
  }
  const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench-results', 'merge.json');
  mkdirSync(dirname(out), { recursive: true });
  const json = {
    benchmark: 'task_arithmetic merge bandwidth',
    date: new Date().toISOString(),
    device,
    host: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), node: process.version },
    sizes: { shapes: SHAPES, tensors: SHAPES.length, weightBytes, weightMiB: weightBytes / MiB },
    method: 'task_arithmetic, lambda 1, F32 in and out',
    reps: { copy: REPS, resident: REPS, streaming: STREAM_REPS, cpu: REPS, warmUp: 'one pass over the tensors under 1 Mi elements' },
    bytesCounted: 'copy 2·4n; resident, streaming(useful), cpu (N+2)·4n; streaming(actual) (3N+2)·4n',
    results,
    totalSeconds: (performance.now() - started) / 1000,
  };
  writeFileSync(out, JSON.stringify(json, null, 2) + '\n');
  console.log(`\nwrote ${out} (${json.totalSeconds.toFixed(0)} s)`);
}

await main();
