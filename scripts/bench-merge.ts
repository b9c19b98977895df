/**
 * Merge bandwidth benchmark (`npm run bench:merge`; not a test). A synthetic Llama-shaped
 * checkpoint (one decoder layer of hidden 2048 / MLP 5504 / GQA 16:4 heads, a 32000-token
 * embedding: 11 tensors, 419 MiB of F32) and N = 3 and N = 8 fine-tunes of it, all in memory;
 * task_arithmetic measured in the same run on the same device:
 *   copy       copyBufferToBuffer of every base tensor (the ceiling the issue names)
 *   copy4      a compute-shader copy, vec4 per invocation (what a WGSL kernel can stream here)
 *   resident   the interactive path a slider move runs: ResidentMerge.merge with new weights over
 *              the resident models (one combine per tensor forming Δ in the kernel, one submit),
 *              outputs in F32
 *   streaming  the streaming path's GPU work with the models already on the GPU in separate
 *              buffers: packed into rows (buffer copies) + combine per tensor (tensors under 8 Mi
 *              elements, to keep a SwiftShader run short)
 *   cpu        a plain TypeScript loop over the models, out = θ + Σ c_r (θ_r − θ)
 * GB/s = bytes read + written (1e9 bytes/s): copy, copy4 2·4n; resident, cpu (N+2)·4n;
 * streaming (N+2)·4n useful (θ, N models, out) and (3N+2)·4n actual (the models copied into rows first).
 * Each measure: a warm-up, a calibration pass, a discarded trial, then REPS trials of as many
 * passes enqueued back to back as fill MIN_TRIAL_S (1 s; at most 1000), one wait per trial; the median seconds
 * per pass is reported (on a fast GPU a pass is well under a millisecond, so one wait per pass
 * would time the wait; with 0.25 s trials an H100 gave N = 8 at half the rate of 1 s trials).
 * Writes bench-results/merge.json (or BENCH_OUT).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCheckpoint, type Checkpoint, parseConfig, expectedTensors, writeSafetensors, bytesSource, type GpuRuntime, requestDevice, GpuRuntime as Runtime, getMethod, ResidentMerge, GpuOutOfMemoryError } from '../src/engine/index.ts';
import { loadShaderSources, nodeGpu } from '../src/node/gpu.ts';

const MiB = 2 ** 20;
const REPS = Number(process.env.REPS ?? 3);
const STREAM_REPS = Number(process.env.STREAM_REPS ?? 2);
const MIN_TRIAL_S = Number(process.env.MIN_TRIAL_S ?? 1);
const MAX_PASSES = 1000;
const COUNTS = (process.env.COUNTS ?? '3,8').split(',').map(Number);
const STREAM_MAX_ELEMENTS = 8 * 2 ** 20;

const HIDDEN = 2048;
const FFN = 5504;
const VOCAB = 32000;
const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: HIDDEN,
  intermediate_size: FFN,
  num_hidden_layers: 1,
  num_attention_heads: 16,
  num_key_value_heads: 4,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  vocab_size: VOCAB,
  torch_dtype: 'float32',
};
// The architecture table's required tensors of CONFIG, in its order (head tied).
const TABLE = expectedTensors(parseConfig(CONFIG, 'bench config')).filter((t) => !t.optional);
const TENSORS: [string, number[]][] = TABLE.map((t) => [t.name, t.shape]);
const count = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

// A compute-shader copy: the bandwidth a WGSL kernel streams on this device (the bench's second ceiling).
const COPY4_WGSL = `
// @include common/index.wgsl
override WG: u32 = 256;
struct Params { n4: u32 }
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> params: Params;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat_index(gid, nwg, WG);
  if (q < params.n4) { dst[q] = src[q]; }
}`;

/** Fast deterministic fill (an LCG; the values only need to be non-trivial). */
function fill(a: Float32Array, seed: number, scale: number, add?: Float32Array): void {
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (add ? add[i]! : 0) + (s / 4294967296 - 0.5) * scale;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Timing {
  median: number;
  all: number[];
  batch: number;
}

/** Seconds per pass: `run` enqueues one pass (the warm-up pass gets warm = true), `settle` waits. */
async function time(run: (warm: boolean) => Promise<void> | void, settle: () => Promise<void>, reps = REPS): Promise<Timing> {
  await run(true);
  await settle();
  let t0 = performance.now();
  await run(false);
  await settle();
  const once = (performance.now() - t0) / 1000;
  const batch = Math.min(MAX_PASSES, Math.max(1, Math.ceil(MIN_TRIAL_S / Math.max(once, 1e-6))));
  const all: number[] = [];
  // One trial more than reported, the first: on a GPU that idled its clocks (and touches freshly
  // allocated memory) the first trial of a measure ran up to twice as slow as the rest.
  for (let i = -1; i < reps; i++) {
    t0 = performance.now();
    for (let b = 0; b < batch; b++) await run(false);
    await settle();
    if (i >= 0) all.push((performance.now() - t0) / 1000 / batch);
  }
  return { median: median(all), all, batch };
}

interface Model {
  checkpoint: Checkpoint;
  /** Tensor values by name, in TENSORS order. */
  values: Float32Array[];
}

async function makeCheckpoint(name: string, values: Float32Array[]): Promise<Checkpoint> {
  const weights = writeSafetensors(
    TENSORS.map(([tensor, shape], k) => ({ name: tensor, dtype: 'F32' as const, shape, data: new Uint8Array(values[k]!.buffer) })),
    { format: 'pt' },
  );
  const files = new Map([
    ['config.json', bytesSource(new TextEncoder().encode(JSON.stringify(CONFIG)), `${name}/config.json`)],
    ['model.safetensors', bytesSource(weights, `${name}/model.safetensors`)],
  ]);
  return openCheckpoint(files, name);
}

async function makeModels(N: number): Promise<{ base: Model; models: Model[] }> {
  const baseValues = TENSORS.map(([, shape], k) => {
    const a = new Float32Array(count(shape));
    fill(a, 17 + k, 0.2);
    return a;
  });
  const base = { checkpoint: await makeCheckpoint('bench-base', baseValues), values: baseValues };
  const models: Model[] = [];
  for (let r = 0; r < N; r++) {
    const values = TENSORS.map(([, shape], k) => {
      const a = new Float32Array(count(shape));
      fill(a, 1000 * (r + 1) + k, 0.02, baseValues[k]);
      return a;
    });
    models.push({ checkpoint: await makeCheckpoint(`bench-ft${r}`, values), values });
  }
  return { base, models };
}

/** out = θ + Σ c_r (θ_r − θ), a plain loop over Float32Arrays (tensors under 1 Mi elements when warm). */
function cpuMerge(base: Model, models: Model[], outs: Float32Array[], coef: Float32Array, warm: boolean): void {
  const N = coef.length;
  for (const [k, b] of base.values.entries()) {
    if (warm && b.length >= 2 ** 20) continue;
    const out = outs[k]!;
    const ms = models.map((m) => m.values[k]!);
    for (let i = 0; i < b.length; i++) {
      const x = b[i]!;
      let s = 0;
      for (let r = 0; r < N; r++) s += coef[r]! * (ms[r]![i]! - x);
      out[i] = x + s;
    }
  }
}

async function benchN(rt: GpuRuntime, N: number): Promise<Record<string, unknown>> {
  let t0 = performance.now();
  const { base, models } = await makeModels(N);
  const n = base.values.reduce((s, v) => s + v.length, 0);
  const small = (k: number): boolean => base.values[k]!.length < 2 ** 20;
  console.error(`N = ${N}: ${((n * 4) / MiB).toFixed(1)} MiB of F32 weights per model, made in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const settle = (): Promise<void> => rt.flush();

  // Ceilings: copy every base tensor into an output buffer of its size.
  const gpuBase = base.values.map((v, k) => rt.upload(`bench.base${k}`, v));
  const gpuOut = base.values.map((v, k) => rt.storage(`bench.out${k}`, v.byteLength));
  const copy = await time(() => {
    const encoder = rt.device.createCommandEncoder({ label: 'bench.copy' });
    for (const [k, b] of gpuBase.entries()) encoder.copyBufferToBuffer(b, 0, gpuOut[k]!, 0, b.size);
    rt.device.queue.submit([encoder.finish()]);
  }, settle);
  const wg = rt.workgroupSize(256);
  const copyPipeline = rt.pipeline('bench/copy4', { WG: wg });
  const copyGroups = gpuBase.map((b, k) => {
    const n4 = b.size / 16;
    if (!Number.isInteger(n4)) throw new Error(`tensor ${k} is not a whole number of vec4`);
    return { group: rt.bindGroup(copyPipeline, [b, gpuOut[k]!, rt.uniform('bench.copy4.params', new Uint32Array([n4]))]), grid: rt.grid1d(n4, wg) };
  });
  const copy4 = await time(() => {
    const encoder = rt.device.createCommandEncoder({ label: 'bench.copy4' });
    const pass = encoder.beginComputePass();
    pass.setPipeline(copyPipeline);
    for (const { group, grid } of copyGroups) {
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(grid[0], grid[1]);
    }
    pass.end();
    rt.device.queue.submit([encoder.finish()]);
  }, settle);
  const copied = new Uint32Array(await rt.read(gpuOut[1]!));
  const source = new Uint32Array(base.values[1]!.buffer);
  if (!copied.every((x, i) => x === source[i])) throw new Error('copy4 did not copy the tensor');
  console.error(`  copies done`);

  // Streaming: the models on the GPU, packed into rows and combined per tensor (the smaller tensors).
  const method = getMethod('task_arithmetic');
  const weights = Array.from({ length: N }, (_, r) => 0.1 + 0.05 * r);
  const streamed = base.values.map((v, k) => k).filter((k) => base.values[k]!.length < STREAM_MAX_ELEMENTS);
  const streamElements = streamed.reduce((s, k) => s + base.values[k]!.length, 0);
  const gpuModels = new Map(streamed.map((k) => [k, models.map((m, r) => rt.upload(`bench.model${r}.${k}`, m.values[k]!))]));
  const streaming = await time(async (warm) => {
    for (const k of streamed) {
      if (warm && !small(k)) continue;
      const ms = gpuModels.get(k)!.map((buffer) => ({ buffer, dtype: 'F32' as const }));
      await method.gpu(rt, { n: base.values[k]!.length, base: { buffer: gpuBase[k]!, dtype: 'F32' }, models: ms, weights, outDtype: 'F32', dst: gpuOut[k] }, { lambda: 1 }, { tensorIndex: k });
    }
  }, settle, STREAM_REPS);
  for (const ms of gpuModels.values()) rt.release(...ms);
  rt.release(...gpuBase, ...gpuOut);
  console.error(`  streaming done`);

  // Resident: what a slider move runs. Every pass gets new weights, as dragging does. Rows larger
  // than a binding (SwiftShader: 1 GiB; the embedding's at N = 8 are 2 GB) are kept in chunks.
  const last = (tick: number): number[] => weights.map((w) => w + 1e-3 * (tick % 7));
  let residentTiming: Timing | undefined;
  let residentError: string | undefined;
  let gpuProbe: Float32Array | undefined;
  const probe = TABLE.findIndex((t) => t.role === 'attn.q');
  let tick = 0;
  try {
    t0 = performance.now();
    const resident = await ResidentMerge.create(rt, base.checkpoint, models.map((m) => m.checkpoint));
    try {
      console.error(`  resident Δ ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      residentTiming = await time(async () => {
        tick++;
        await resident.merge({ method: 'task_arithmetic', weights: last(tick), dtype: 'float32' });
      }, settle);
      // The last merge, read back, against the TypeScript loop with the same weights.
      const merged = await resident.merge({ method: 'task_arithmetic', weights: last(tick), dtype: 'float32' });
      gpuProbe = new Float32Array(await rt.read(merged.get(TENSORS[probe]![0])!.buffer));
    } finally {
      resident.destroy();
    }
  } catch (error) {
    if (!(error instanceof GpuOutOfMemoryError)) throw error;
    residentError = error.message;
    console.error(`  resident refused: ${error.message}`);
  }
  console.error(`  resident done`);

  const outs = base.values.map((v) => new Float32Array(v.length));
  const cpu = await time((warm) => cpuMerge(base, models, outs, Float32Array.from(last(tick)), warm), async () => {});
  let worst = 0;
  if (gpuProbe) for (let i = 0; i < gpuProbe.length; i++) worst = Math.max(worst, Math.abs(gpuProbe[i]! - outs[probe]![i]!));
  console.error(`  cpu done`);

  const gbs = (bytes: number, s: number): number => bytes / s / 1e9;
  const useful = (N + 2) * 4 * n;
  const g = {
    copy: gbs(2 * 4 * n, copy.median),
    copy4: gbs(2 * 4 * n, copy4.median),
    resident: residentTiming ? gbs(useful, residentTiming.median) : Number.NaN,
    streamingUseful: gbs((N + 2) * 4 * streamElements, streaming.median),
    streamingActual: gbs((3 * N + 2) * 4 * streamElements, streaming.median),
    cpu: gbs(useful, cpu.median),
  };
  const timings = { copy, copy4, ...(residentTiming ? { resident: residentTiming } : {}), streaming, cpu };
  return {
    N,
    elements: n,
    weightBytes: 4 * n,
    streamingWeightBytes: 4 * streamElements,
    seconds: Object.fromEntries(Object.entries(timings).map(([k, t]) => [k, t.median])),
    secondsAll: Object.fromEntries(Object.entries(timings).map(([k, t]) => [k, t.all])),
    passesPerTrial: Object.fromEntries(Object.entries(timings).map(([k, t]) => [k, t.batch])),
    gbPerS: g,
    ratios: {
      residentOverCopy: g.resident / g.copy,
      residentOverCopy4: g.resident / g.copy4,
      residentOverCpu: g.resident / g.cpu,
      streamingActualOverCopy: g.streamingActual / g.copy,
      streamingUsefulOverCpu: g.streamingUseful / g.cpu,
    },
    maxAbsDiffGpuVsCpu: gpuProbe ? worst : null,
    ...(residentError ? { residentError } : {}),
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const device = await requestDevice(await nodeGpu(), 'bench-merge');
  const rt = new Runtime(device, { ...loadShaderSources(), 'bench/copy4': COPY4_WGSL });
  const info = (rt.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const deviceInfo = {
    vendor: info?.vendor ?? 'unknown',
    architecture: info?.architecture ?? 'unknown',
    description: info?.description ?? '',
    maxStorageBufferBindingSize: rt.limits.maxStorageBufferBindingSize,
  };
  const weightBytes = TENSORS.reduce((s, [, shape]) => s + 4 * count(shape), 0);
  if (weightBytes < 256 * MiB) throw new Error(`benchmark needs >= 256 MiB of weights, has ${weightBytes}`);
  console.error(
    `device: ${deviceInfo.vendor} ${deviceInfo.architecture} ${deviceInfo.description}; ${(weightBytes / MiB).toFixed(1)} MiB of F32 weights in ${TENSORS.length} tensors; ` +
      `${REPS} trials (streaming ${STREAM_REPS}) of >= ${MIN_TRIAL_S} s after a warm-up`,
  );
  const results = [];
  for (const N of COUNTS) results.push(await benchN(rt, N));
  rt.destroy();

  const f = (x: number): string => (Number.isFinite(x) ? x.toFixed(2).padStart(8) : '     n/a');
  console.log(`\ntask_arithmetic merge bandwidth (GB/s, bytes read + written; median of ${REPS} trials) on ${deviceInfo.vendor} ${deviceInfo.description}`);
  console.log('   N      copy     copy4  resident  stream(useful)  stream(actual)       cpu  resident/copy  resident/copy4  resident/cpu');
  for (const r of results) {
    const g = r.gbPerS as Record<string, number>;
    const q = r.ratios as Record<string, number>;
    console.log(
      `${String(r.N).padStart(4)}  ${f(g.copy!)}  ${f(g.copy4!)}  ${f(g.resident!)}        ${f(g.streamingUseful!)}        ${f(g.streamingActual!)}  ${f(g.cpu!)}       ${f(q.residentOverCopy!)}        ${f(q.residentOverCopy4!)}      ${f(q.residentOverCpu!)}`,
    );
  }
  const out = process.env.BENCH_OUT ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'bench-results', 'merge.json');
  mkdirSync(dirname(out), { recursive: true });
  const json = {
    benchmark: 'task_arithmetic merge bandwidth',
    date: new Date().toISOString(),
    device: deviceInfo,
    host: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), node: process.version },
    sizes: { tensors: TENSORS.map(([name, shape]) => ({ name, shape })), weightBytes, weightMiB: weightBytes / MiB },
    method: 'task_arithmetic, lambda 1, F32 in and out; resident = ResidentMerge.merge with new weights each pass',
    timing: `median of REPS trials (streaming STREAM_REPS) after one discarded trial; a trial enqueues passesPerTrial passes back to back and waits once, lasting >= ${MIN_TRIAL_S} s or ${MAX_PASSES} passes`,
    reps: { trials: REPS, streamingTrials: STREAM_REPS, minTrialSeconds: MIN_TRIAL_S },
    bytesCounted: 'copy, copy4 2·4n; resident, streaming(useful), cpu (N+2)·4n; streaming(actual) (3N+2)·4n',
    results,
    totalSeconds: (performance.now() - started) / 1000,
  };
  writeFileSync(out, JSON.stringify(json, null, 2) + '\n');
  console.log(`\nwrote ${out} (${json.totalSeconds.toFixed(0)} s)`);
}

await main();
