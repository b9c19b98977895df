import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { viewBinding, type GpuView } from '../gpu/tensor.ts';
import { dtypeCode, storageBytes, type FloatDType } from '../io/dtypes.ts';
import { baseBinding, needsBase, rowsBindings, rowsConstants, type RowChunk } from './mergeRows.ts';

export interface CombineArgs {
  /** θ_base in its stored dtype (the whole tensor; the chunk's offset picks its elements). */
  base?: GpuView;
  /** Factor on the base (1 for task arithmetic); without `hasBase` the base is not added. */
  alpha?: number;
  /** Add alpha·base (false: a plain weighted sum of the rows, linear). Default: base given and not raw. */
  hasBase?: boolean;
  /** One chunk of the tensor's rows (mergeRows.ts). */
  chunk: RowChunk;
  /** Read the rows as models (θ_i) rather than distribution vectors (Δ_i). */
  raw?: boolean;
  /** (N) factor per row, rounded once to f32. */
  coefficients: readonly number[];
  outDtype: FloatDType;
  /** Output for the whole tensor; the chunk's elements are written at their own offset. */
  dst?: GPUBuffer;
}

const WG = 256;

/**
 * out = alpha·base + Σ_r coef_r·row_r in f32 over one chunk, encoded to outDtype
 * (shaders/merge/combine.wgsl). One pass over the N rows for any N: the interactive DEM merge.
 * A zero weighted sum returns alpha·base untouched, so all-zero weights give the base bit for bit.
 */
export function combineRows(rt: GpuRuntime, a: CombineArgs): GPUBuffer {
  const N = a.coefficients.length;
  if (N === 0) throw new InputError('combineRows: no rows');
  const out = a.dst ?? rt.storage(`mergeCombine.${a.outDtype}`, storageBytes(a.outDtype, a.chunk.offset + a.chunk.rows.n));
  const combine = PreparedCombine.create(rt, { ...a, rowCount: N, dst: out });
  try {
    combine.set(a.coefficients, a.alpha ?? 1);
    const encoder = rt.device.createCommandEncoder({ label: 'mergeCombine.encoder' });
    const pass = encoder.beginComputePass({ label: 'mergeCombine.pass' });
    combine.encode(pass);
    pass.end();
    rt.device.queue.submit([encoder.finish()]);
  } finally {
    combine.destroy();
  }
  return out;
}

/**
 * combineRows with its parameter buffers, pipeline and bind group made once, for a merge that is
 * re-run with new coefficients (ResidentMerge): set() writes the (N) coefficients and the 16-byte
 * parameters, encode() records the dispatch into a pass the caller shares between tensors, so a
 * whole re-merge is one submit and allocates nothing. Same kernel and inputs as combineRows,
 * hence the same bits.
 */
export class PreparedCombine {
  private constructor(
    private readonly rt: GpuRuntime,
    private readonly n: number,
    private readonly rowCount: number,
    private readonly pipeline: GPUComputePipeline,
    private readonly bindGroup: GPUBindGroup | undefined,
    private readonly grid: readonly [number, number],
    private readonly params: GPUBuffer,
    private readonly coef: GPUBuffer,
  ) {}

  static create(rt: GpuRuntime, a: Omit<CombineArgs, 'coefficients' | 'alpha' | 'dst'> & { rowCount: number; dst: GPUBuffer }): PreparedCombine {
    const N = a.rowCount;
    const { rows, offset } = a.chunk;
    const n = rows.n;
    if (!Number.isInteger(N) || N < 1 || N !== rows.codes.length) throw new InputError(`combineRows: ${N} coefficients for ${rows.codes.length} rows`);
    const raw = a.raw ?? false;
    const hasBase = a.hasBase ?? (a.base !== undefined && !raw);
    if ((hasBase || needsBase(rows, raw)) && !a.base) throw new InputError('combineRows: these rows need the base');
    const base = baseBinding(a.base, a.chunk, 'combineRows base');
    const dst = viewBinding({ buffer: a.dst, dtype: a.outDtype, offset }, n, 'combineRows destination');
    const wg = rt.workgroupSize(WG);
    // n % 4 == 0: combine4.wgsl, four elements per invocation over 16-byte row loads (same bits, faster).
    const quads = n % 4 === 0;
    const pipeline = rt.pipeline(quads ? 'merge/combine4' : 'merge/combine', {
      WG: wg,
      BASE_DT: dtypeCode(base.dtype),
      OUT_DT: dtypeCode(a.outDtype),
      HAS_BASE: hasBase ? 1 : 0,
      ...rowsConstants(rows, raw),
    });
    const params = rt.createBuffer('mergeCombine.params', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    let coef: GPUBuffer;
    try {
      coef = rt.createBuffer('mergeCombine.coef', N * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    } catch (error) {
      rt.release(params);
      throw error;
    }
    const invocations = quads ? n / 4 : a.outDtype === 'F32' ? n : Math.ceil(n / 2);
    const bindGroup = n === 0 ? undefined : rt.bindGroup(pipeline, [base.binding, ...rowsBindings(rows), coef, dst, params]);
    return new PreparedCombine(rt, n, N, pipeline, bindGroup, rt.grid1d(invocations, wg), params, coef);
  }

  /** GPU bytes this prepared combine holds. */
  get bytes(): number {
    return this.params.size + this.coef.size;
  }

  /** New coefficients (N, rounded once to f32) and factor on the base. */
  set(coefficients: readonly number[], alpha = 1): void {
    if (coefficients.length !== this.rowCount) throw new InputError(`combineRows: ${coefficients.length} coefficients for ${this.rowCount} rows`);
    const params = new ArrayBuffer(16);
    new Uint32Array(params, 0, 2).set([this.n, this.rowCount]);
    new Float32Array(params, 8, 1)[0] = alpha;
    this.rt.write(this.params, new Uint8Array(params));
    this.rt.write(this.coef, Float32Array.from(coefficients));
  }

  /** Records the dispatch (nothing for an empty chunk). */
  encode(pass: GPUComputePassEncoder): void {
    if (!this.bindGroup) return;
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(this.grid[0], this.grid[1]);
  }

  destroy(): void {
    this.rt.release(this.params, this.coef);
  }
}
