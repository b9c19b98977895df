import { GpuOutOfMemoryError } from '../errors.ts';
import { formatBytes } from '../format.ts';
import { elementCount } from '../gpu/tensor.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { storageBytes } from '../io/dtypes.ts';
import { forwardWeights } from '../io/weights.ts';
import { mergeScratchBytes } from '../kernels/merge.ts';
import { chunkRanges, tensorRowsBytes } from '../kernels/mergeRows.ts';
import { floatDtypeOf, planMerge } from '../merge/execute.ts';
import type { MergeRecipe } from '../merge/recipe.ts';
import { residentBytes, type Residency } from '../merge/resident.ts';
import { GpuModel } from '../model/forward.ts';

/**
 * The memory plan: from the safetensors headers alone, what evaluating a recipe needs on the GPU
 * in each way the Workspace can run it — resident (exact, or compressed Δ when allowed) or
 * streamed tensor by tensor — against the device's limits and the memory budget; which one the
 * Workspace will take, or why none fits, with the shortfall named, before anything is loaded.
 * The studio (Worker) shows it at load, `dem ppl`/`dem merge` print it; the numbers are upper
 * bounds of what the runtime then counts (GpuRuntime.memory.peak, `gpu_peak_bytes`).
 */
export interface MemoryPlanRequest {
  base: Checkpoint;
  /** The recipe's checkpoints (none: the base evaluated alone). */
  models: readonly Checkpoint[];
  recipe: MergeRecipe;
  /** Tokens per window and windows per dispatch (the activations); `export`: no model is built. */
  context?: number;
  batch?: number;
  /** Tokens will be generated (generative task items): a KV cache is counted too. */
  generation?: boolean;
  use: 'evaluate' | 'export';
  /** Ways the Workspace may take: resident first (when asked), compressed Δ only when allowed. */
  resident: boolean;
  compressed: boolean;
  limits: Pick<GPUSupportedLimits, 'maxBufferSize' | 'maxStorageBufferBindingSize' | 'minStorageBufferOffsetAlignment'>;
  /** Bytes the runtime may hold (its budget; Infinity when the user set none). */
  budget: number;
}

export interface PlanOption {
  mode: 'resident' | 'streaming' | 'base';
  residency?: Residency;
  /** Peak bytes, and its parts. */
  bytes: number;
  parts: Record<string, number>;
  fits: boolean;
  /** Merges on compressed Δ: measured numbers are approximations. */
  approximate: boolean;
}

export interface MemoryPlan {
  budget: number;
  /** Every way considered, in the Workspace's order of preference. */
  options: PlanOption[];
  /** What the Workspace will run (undefined: nothing fits; `refusal` says why). */
  choice: PlanOption | undefined;
  /** Tensors whose rows are kept in chunks (larger than one binding). */
  chunked: number;
  refusal?: string;
  /** One line per option and the verdict, for the CLI and the studio. */
  lines: string[];
}

function optionName(o: PlanOption): string {
  return o.mode === 'resident' ? `resident ${o.residency === 'exact' ? 'exact' : `compressed (${o.residency} Δ)`}` : o.mode === 'base' ? 'the base alone' : 'streamed tensor by tensor';
}

function partsText(parts: Record<string, number>): string {
  return Object.entries(parts)
    .filter(([, b]) => b > 0)
    .map(([k, b]) => `${k} ${formatBytes(b)}`)
    .join(', ');
}

export function planMemory(r: MemoryPlanRequest): MemoryPlan {
  const { base, models, limits, budget } = r;
  const spec = base.spec;
  const activations = r.use === 'evaluate' ? GpuModel.activationBytes(spec, { maxContext: r.context, maxBatch: r.batch, generation: r.generation }) : 0;
  const job = { recipe: r.recipe, base, models };
  const plan = planMerge(job);
  const forward = new Set(forwardWeights(spec).map((t) => t.name));
  const problems: string[] = [];
  const maxBinding = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);

  // The forward pass binds each weight whole: one larger than a binding cannot be evaluated.
  let weights = 0;
  let inFlight = 0;
  let chunked = 0;
  for (const t of plan) {
    const out = t.merged ? storageBytes(t.dtype, elementCount(t.ref.shape)) : t.ref.byteLength;
    if (forward.has(t.ref.name)) {
      weights += out;
      if (r.use === 'evaluate' && out > maxBinding) {
        problems.push(`tensor '${t.ref.storedName}' is ${formatBytes(out)} as ${t.dtype}, more than the device's largest binding (${formatBytes(maxBinding)}): the forward pass cannot bind it`);
      }
    }
    if (out > limits.maxBufferSize) problems.push(`tensor '${t.ref.storedName}' is ${formatBytes(out)} as ${t.dtype}, more than the device's largest buffer (${formatBytes(limits.maxBufferSize)})`);
    if (!t.merged || models.length === 0) {
      inFlight = Math.max(inFlight, t.ref.byteLength + (r.use === 'export' ? t.ref.byteLength : 0));
      continue;
    }
    const n = elementCount(t.ref.shape);
    const codes = models.map((m) => floatDtypeOf(m.tensors.get(t.ref.name)!));
    const chunks = chunkRanges(limits, codes, n).length;
    if (chunks > 1) chunked++;
    // streamMerge: the base's tensor, the models' rows, the output, the method's scratch; an export reads the output back.
    const tensor = t.ref.byteLength + tensorRowsBytes(limits, codes, n) + out + mergeScratchBytes(models.length, n, chunks) + (r.use === 'export' ? out : 0);
    inFlight = Math.max(inFlight, tensor);
  }

  const options: PlanOption[] = [];
  const option = (mode: PlanOption['mode'], parts: Record<string, number>, residency?: Residency): PlanOption => {
    const bytes = Object.values(parts).reduce((a, b) => a + b, 0);
    return { mode, residency, parts, bytes, fits: problems.length === 0 && bytes <= budget, approximate: residency !== undefined && residency !== 'exact' };
  };
  if (models.length === 0) {
    options.push(option('base', { weights, activations }));
  } else {
    if (r.use === 'evaluate' && r.resident) {
      const residencies: Residency[] = ['exact'];
      if (r.compressed) {
        if (models.some((m) => [...m.tensors.values()].some((t) => t.dtype === 'F32'))) residencies.push('bf16');
        residencies.push('int8');
      }
      for (const residency of residencies) {
        const rb = residentBytes(base, models, limits, residency, r.recipe.dtype);
        options.push(option('resident', { base: rb.base, models: residency === 'exact' ? rb.rows : 0, 'compressed Δ': residency === 'exact' ? 0 : rb.rows, 'merged model': rb.outputs + rb.prepared, 'one tensor in flight': rb.transient, activations }, residency));
      }
    }
    // Streaming: every merged weight accumulates; one tensor's inputs are on the GPU with them, then the model's activations.
    options.push(option('streaming', r.use === 'export' ? { 'one tensor in flight': inFlight } : { 'merged model': weights, 'one tensor in flight or activations': Math.max(inFlight, activations) }));
  }
  const choice = options.find((o) => o.fits);
  const lines = options.map((o) => `${o.fits ? 'fits ' : 'no   '} ${optionName(o).padEnd(28)} ${formatBytes(o.bytes).padStart(10)}  (${partsText(o.parts)})`);
  const budgetText = Number.isFinite(budget) ? formatBytes(budget) : 'no budget set (WebGPU does not report the device memory; the device limits still apply)';
  lines.unshift(`GPU memory plan (budget: ${budgetText}; largest binding ${formatBytes(maxBinding)}${chunked ? `; ${chunked} tensor(s) kept in chunks` : ''}):`);
  let refusal: string | undefined;
  if (problems.length) {
    refusal = problems.join('; ');
  } else if (!choice) {
    const least = options.reduce((a, b) => (b.bytes < a.bytes ? b : a));
    const compressedHint = r.use === 'evaluate' && r.resident && !r.compressed && models.length > 0 ? '; compressed residency (opt-in) may fit' : '';
    refusal = `${optionName(least)} needs ${formatBytes(least.bytes)} (${partsText(least.parts)}) but the budget is ${formatBytes(budget)}: short by ${formatBytes(least.bytes - budget)}${compressedHint}`;
  }
  if (choice) lines.push(`→ ${optionName(choice)}${choice.approximate ? ' — approximate: numbers are re-scored exactly before export' : ''}`);
  else lines.push(`→ refused: ${refusal}`);
  return { budget, options, choice, chunked, refusal, lines };
}

/** Throws GpuOutOfMemoryError with the plan's refusal when nothing fits. */
export function checkPlan(plan: MemoryPlan): PlanOption {
  if (!plan.choice) throw new GpuOutOfMemoryError(`not enough GPU memory: ${plan.refusal}`);
  return plan.choice;
}
