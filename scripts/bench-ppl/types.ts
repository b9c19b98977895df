/**
 * What scripts/bench-ppl.ts (Node, Playwright) and scripts/bench-ppl/page.ts (the page) pass to
 * each other through page.evaluate: plain JSON.
 */
export type EngineName = 'ours' | 'ort-webgpu' | 'ort-wasm';

export interface CaseSpec {
  name: string;
  /** A config.json object with weights drawn from `seed`, or a checkpoint folder served by Vite. */
  model: { kind: 'random'; config: Record<string, unknown>; seed: number } | { kind: 'fixture'; folder: string };
  /** (B, T): B windows of T tokens per forward; every engine scores the same windows. */
  batch: number;
  context: number;
  windowSeed: number;
  /** Timed rounds (one run per engine each, round-robin) after the warm-up/verification runs... */
  reps: number;
  /** ...ending early (after at least 2) once the rounds have taken this long. */
  timedBudgetMs: number;
  engines: EngineName[];
  /** Record per-kernel GPU timestamps during the warm-up run of the GPU engines. */
  profile: boolean;
  /** Largest relative difference of the mean NLL from the first engine's that still counts as the same. */
  tolerance: number;
  wasmThreads: number;
}

export interface KernelTime {
  kernel: string;
  count: number;
  ms: number;
}

export interface EngineResult {
  engine: EngineName;
  /** The exact error when the engine could not be set up or run. */
  error?: string;
  /** Weights upload / session creation. */
  setupMs?: number;
  /** The warm-up run, which is also the verification run. */
  firstRunMs?: number;
  runsMs?: number[];
  medianMs?: number;
  /** B·T input tokens per second at the median. */
  tokensPerSec?: number;
  /** Mean NLL over the B·(T−1) predicted tokens, and each window's summed NLL. */
  nllMean?: number;
  perWindow?: number[];
  /** Against the first engine that ran: |Δ mean NLL| / mean NLL, and the largest per-window |Δ sum| / sum. */
  relDiffNllMean?: number;
  maxRelDiffWindow?: number;
  verified?: boolean;
  /** GPU time per kernel (sorted, largest first) in the warm-up run, and its total. */
  profile?: KernelTime[];
  profileTotalMs?: number;
  profileNote?: string;
  /** Ours: the first passes in dispatch order (embedding, then the first block) with their grids. */
  profileSequence?: { kernel: string; grid: string; ms: number }[];
}

export interface CaseResult {
  name: string;
  shape: { layers: number; hidden: number; heads: number; vocab: number; ff: number; maxPositions: number; params: number; modelType: string };
  batch: number;
  context: number;
  tokensPerRun: number;
  predictedPerRun: number;
  reps: number;
  onnxModelBytes: number;
  engines: EngineResult[];
}

export interface PageInfo {
  userAgent: string;
  hardwareConcurrency: number;
  crossOriginIsolated: boolean;
  adapter: { vendor: string; architecture: string; device: string; description: string; features: string[]; maxBufferSize: number; maxStorageBufferBindingSize: number } | null;
  ortVersion: string;
}
