/**
 * The in-page half of `npm run bench:ppl` (driven by scripts/bench-ppl.ts through Playwright, in
 * Chromium, served by the Vite dev server). For one case it builds the weights and the token
 * windows once; then per engine in turn: set up and one warm-up run (per-kernel GPU timestamps
 * recorded when asked) whose NLL is checked against the first engine's; then the timed runs,
 * round-robin over the verified engines (all stay set up), so that load from other work on a
 * shared machine falls on all of them alike. Engines:
 *   ours        GpuModel (src/engine/model/forward.ts) on our own WebGPU device
 *   ort-webgpu  onnxruntime-web 1.19.2, WebGPU execution provider
 *   ort-wasm    onnxruntime-web 1.19.2, wasm execution provider (SIMD, `wasmThreads` threads)
 * Both ORT engines run the same ONNX model: the training forward graph as an inference model with
 * the weights as initializers (src/engine/train/onnx/inference.ts), output (B, T) per-position NLL.
 */
import { formatBytes, requestDevice, GpuRuntime, normaliseShaderSources, openCheckpoint, parseConfig, bytesSource, type ModelSpec, GpuModel, type GpuTensor, modelParams, type ParamInfo, buildInferenceModel, NLL, loadParams } from '../../src/engine/index.ts';
import { aggregate, timestampPasses } from './timestamps.ts';
import type { CaseResult, CaseSpec, EngineResult, KernelTime, PageInfo } from './types.ts';

const shaders = normaliseShaderSources(import.meta.glob<string>('/shaders/**/*.wgsl', { query: '?raw', import: 'default', eager: true }));

const ORT_DIST = '/node_modules/onnxruntime-web-training/dist/';

// The slice of onnxruntime-web's API used here (its types are ambient module blocks for
// 'onnxruntime-web/...' names, not the alias this project installs).
interface OrtTensor {
  data: unknown;
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface WebGpuProfilingData {
  kernelType: string;
  kernelName: string;
  programName: string;
  startTime: number;
  endTime: number;
}
interface Ort {
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => OrtTensor;
  env: {
    versions: { web?: string; common?: string };
    logLevel: string;
    wasm: { numThreads: number; wasmPaths: string; simd?: boolean; proxy?: boolean };
    webgpu: { profiling?: { mode?: 'off' | 'default'; ondata?: (d: WebGpuProfilingData) => void }; adapter?: unknown };
  };
}

let ortModule: Promise<Ort> | undefined;
function loadOrt(threads: number): Promise<Ort> {
  ortModule ??= (async () => {
    const ort = (await import(/* @vite-ignore */ `${ORT_DIST}ort.all.min.mjs`)) as Ort;
    ort.env.wasm.wasmPaths = ORT_DIST;
    ort.env.wasm.numThreads = threads;
    ort.env.logLevel = 'error';
    return ort;
  })();
  return ortModule;
}

const log = (msg: string): void => console.log(`[bench-ppl] ${msg}`);

export async function pageInfo(): Promise<PageInfo> {
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: 'high-performance' });
  const ort = await loadOrt(navigator.hardwareConcurrency);
  return {
    userAgent: navigator.userAgent,
    hardwareConcurrency: navigator.hardwareConcurrency,
    crossOriginIsolated,
    adapter: adapter
      ? {
          vendor: adapter.info.vendor,
          architecture: adapter.info.architecture,
          device: adapter.info.device,
          description: adapter.info.description,
          features: [...adapter.features].sort(),
          maxBufferSize: adapter.limits.maxBufferSize,
          maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        }
      : null,
    ortVersion: ort.env.versions.web ?? ort.env.versions.common ?? 'unknown',
  };
}

/** Deterministic uniform [0, 1) stream (an LCG: the values only need to be fixed and non-trivial). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/**
 * GPT-2-style initialisation (HF `initializer_range` 0.02 as a uniform of that standard deviation):
 * matrices ±0.02·√3, biases ±0.01, norm scales 1 ± 0.1, norm biases ±0.01.
 */
function randomWeights(params: readonly ParamInfo[], seed: number): Map<string, Float32Array> {
  const next = lcg(seed);
  const out = new Map<string, Float32Array>();
  for (const p of params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    const isNorm = p.role === 'norm1' || p.role === 'norm2' || p.role === 'norm_f';
    const half = p.shape.length > 1 ? 0.02 * Math.sqrt(3) : isNorm ? 0.1 : 0.01;
    const centre = isNorm ? 1 : 0;
    for (let i = 0; i < n; i++) a[i] = centre + (2 * next() - 1) * half;
    out.set(p.name, a);
  }
  return out;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function loadModel(c: CaseSpec): Promise<{ spec: ModelSpec; params: ParamInfo[]; weights: Map<string, Float32Array> }> {
  if (c.model.kind === 'random') {
    const spec = parseConfig(c.model.config, `${c.name} config`);
    const params = modelParams(spec, () => false);
    return { spec, params, weights: randomWeights(params, c.model.seed) };
  }
  const files = new Map<string, ReturnType<typeof bytesSource>>();
  for (const f of ['config.json', 'model.safetensors']) files.set(f, bytesSource(await fetchBytes(c.model.folder + f), f));
  const ck = await openCheckpoint(files, c.name);
  const params = modelParams(ck.spec, (n) => ck.tensors.has(n));
  return { spec: ck.spec, params, weights: await loadParams(ck, params) };
}

interface Profile {
  kernels: KernelTime[];
  totalMs: number;
  note: string;
  /** The passes in order from the first (embedding, first block, ...), with their grids. */
  sequence?: { kernel: string; grid: string; ms: number }[];
}

interface Runner {
  /** Each window's summed NLL over its positions 0..T−2 (predicting tokens 1..T−1). */
  run(): Promise<number[]>;
  /** run() with per-kernel GPU times recorded. */
  profiledRun?(): Promise<{ perWindow: number[]; profile: Profile }>;
  dispose(): Promise<void>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function oursRunner(spec: ModelSpec, params: readonly ParamInfo[], weights: Map<string, Float32Array>, windows: number[][], B: number, T: number): Promise<Runner> {
  const device = await requestDevice(navigator.gpu, 'bench-ppl');
  const rt = new GpuRuntime(device, shaders, { label: 'bench' });
  const gpu = new Map<string, GpuTensor>();
  for (const p of params) gpu.set(p.name, { buffer: rt.upload(`w.${p.name}`, weights.get(p.name)!), dtype: 'F32', shape: p.shape });
  const model = await GpuModel.create(rt, spec, gpu, { maxContext: T, maxBatch: B });
  await rt.flush();
  return {
    run: () => model.nllWindows(windows),
    profiledRun: device.features.has('timestamp-query')
      ? async () => {
          let perWindow: number[] = [];
          const passes = await timestampPasses(rt, async () => {
            perWindow = await model.nllWindows(windows);
          });
          const sequence = passes.slice(0, 16).map((p) => ({ ...p, ms: +p.ms.toFixed(2) }));
          return { perWindow, profile: { ...aggregate(passes), note: 'GPU timestamps per compute pass (one pass per dispatch)', sequence } };
        }
      : undefined,
    dispose: async () => {
      model.destroy();
      rt.destroy();
    },
  };
}

async function ortRunner(ort: Ort, ep: 'webgpu' | 'wasm', onnx: Uint8Array, windows: number[][], B: number, T: number): Promise<Runner> {
  const session = await ort.InferenceSession.create(onnx, { executionProviders: [ep], graphOptimizationLevel: 'all' });
  const ids = new BigInt64Array(B * T);
  const labels = new BigInt64Array(B * T);
  windows.forEach((w, b) => {
    for (let t = 0; t < T; t++) {
      ids[b * T + t] = BigInt(w[t]!);
      // The last position predicts nothing inside the window: any valid id, dropped below.
      labels[b * T + t] = BigInt(t + 1 < T ? w[t + 1]! : 0);
    }
  });
  const feeds = { input_ids: new ort.Tensor('int64', ids, [B, T]), labels: new ort.Tensor('int64', labels, [B, T]) };
  const run = async (): Promise<number[]> => {
    const out = await session.run(feeds);
    const nll = out[NLL]!.data as Float32Array;
    return windows.map((_, b) => {
      let s = 0;
      for (let t = 0; t + 1 < T; t++) s += nll[b * T + t]!;
      return s;
    });
  };
  return {
    run,
    profiledRun:
      ep === 'webgpu'
        ? async () => {
            const entries: { kernel: string; ms: number }[] = [];
            ort.env.webgpu.profiling = { mode: 'default', ondata: (d) => entries.push({ kernel: `${d.kernelType}:${d.programName}`, ms: (d.endTime - d.startTime) / 1e6 }) };
            try {
              const perWindow = await run();
              return { perWindow, profile: { ...aggregate(entries), note: 'onnxruntime-web env.webgpu.profiling (GPU timestamps per program); nodes on the CPU EP are not listed' } };
            } finally {
              ort.env.webgpu.profiling = { mode: 'off' };
            }
          }
        : undefined,
    dispose: () => session.release(),
  };
}

export async function runCase(c: CaseSpec): Promise<CaseResult> {
  const { batch: B, context: T } = c;
  log(`${c.name}: building weights`);
  const { spec, params, weights } = await loadModel(c);
  const nextId = lcg(c.windowSeed);
  const windows = Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(nextId() * spec.vocabSize)));
  const needsOnnx = c.engines.some((e) => e !== 'ours');
  const t0 = performance.now();
  const onnx = needsOnnx ? buildInferenceModel(spec, params, weights, { batch: B, seqLen: T }) : new Uint8Array();
  if (needsOnnx) log(`${c.name}: ONNX model ${formatBytes(onnx.byteLength)} built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const predicted = B * (T - 1);
  const results: EngineResult[] = [];
  let reference: EngineResult | undefined;

  // Phase 1, per engine in turn: set up, then the warm-up run, which verifies the NLL against the
  // first engine's and, when asked, records the per-kernel GPU profile (GPU timestamps exclude
  // the first run's pipeline compilation on the CPU). All engines stay set up for phase 2.
  const live: { r: EngineResult; runner: Runner }[] = [];
  for (const engine of c.engines) {
    const r: EngineResult = { engine };
    results.push(r);
    let runner: Runner | undefined;
    try {
      const s0 = performance.now();
      runner = engine === 'ours'
        ? await oursRunner(spec, params, weights, windows, B, T)
        : await ortRunner(await loadOrt(c.wasmThreads), engine === 'ort-webgpu' ? 'webgpu' : 'wasm', onnx, windows, B, T);
      r.setupMs = performance.now() - s0;
      log(`${c.name} ${engine}: set up in ${(r.setupMs / 1000).toFixed(1)} s`);
      const f0 = performance.now();
      let perWindow: number[];
      if (c.profile && runner.profiledRun) {
        const p = await runner.profiledRun();
        perWindow = p.perWindow;
        r.profile = p.profile.kernels;
        r.profileTotalMs = p.profile.totalMs;
        r.profileNote = p.profile.note;
        r.profileSequence = p.profile.sequence;
      } else {
        perWindow = await runner.run();
      }
      r.firstRunMs = performance.now() - f0;
      r.perWindow = perWindow;
      r.nllMean = perWindow.reduce((a, b) => a + b, 0) / predicted;
      if (!Number.isFinite(r.nllMean)) throw new Error(`mean NLL is ${r.nllMean}`);
      if (reference) {
        const ref = reference;
        r.relDiffNllMean = Math.abs(r.nllMean - ref.nllMean!) / Math.abs(ref.nllMean!);
        r.maxRelDiffWindow = Math.max(...perWindow.map((v, i) => Math.abs(v - ref.perWindow![i]!) / Math.abs(ref.perWindow![i]!)));
        r.verified = r.relDiffNllMean <= c.tolerance;
      } else {
        reference = r;
        r.relDiffNllMean = 0;
        r.maxRelDiffWindow = 0;
        r.verified = true;
      }
      log(`${c.name} ${engine}: warm-up ${(r.firstRunMs / 1000).toFixed(2)} s, mean NLL ${r.nllMean.toFixed(6)} (rel diff ${r.relDiffNllMean.toExponential(2)})`);
      if (!r.verified) throw new Error(`mean NLL ${r.nllMean} differs from ${reference.engine}'s ${reference.nllMean} by ${r.relDiffNllMean.toExponential(2)} (> ${c.tolerance}): not timed`);
      live.push({ r, runner });
    } catch (e) {
      r.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      log(`${c.name} ${engine}: FAILED ${r.error}`);
      await runner?.dispose().catch(() => undefined);
    }
  }

  // Phase 2: timed runs round-robin over the verified engines, so that a machine shared with
  // other work slows them alike; after 2 rounds, stop once the rounds took timedBudgetMs.
  try {
    for (const { r } of live) r.runsMs = [];
    const t1 = performance.now();
    for (let round = 0; round < c.reps && !(round >= 2 && performance.now() - t1 >= c.timedBudgetMs); round++) {
      for (const { r, runner } of live) {
        const q0 = performance.now();
        await runner.run();
        r.runsMs!.push(performance.now() - q0);
      }
      log(`${c.name} round ${round + 1}: ${live.map(({ r }) => `${r.engine} ${(r.runsMs!.at(-1)! / 1000).toFixed(2)} s`).join(', ')}`);
    }
    for (const { r } of live) {
      r.medianMs = median(r.runsMs!);
      r.tokensPerSec = (B * T) / (r.medianMs / 1000);
    }
  } catch (e) {
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    for (const { r } of live) if (r.medianMs === undefined) r.error = `timed runs: ${msg}`;
    log(`${c.name}: timed runs FAILED ${msg}`);
  } finally {
    for (const { runner } of live) await runner.dispose().catch(() => undefined);
  }
  return {
    name: c.name,
    shape: {
      layers: spec.numLayers,
      hidden: spec.hiddenSize,
      heads: spec.numHeads,
      vocab: spec.vocabSize,
      ff: spec.intermediateSize,
      maxPositions: spec.maxPositions,
      params: params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0),
      modelType: spec.modelType,
    },
    batch: B,
    context: T,
    tokensPerRun: B * T,
    predictedPerRun: predicted,
    reps: c.reps,
    onnxModelBytes: onnx.byteLength,
    engines: results,
  };
}
