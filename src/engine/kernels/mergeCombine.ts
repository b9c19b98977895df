import { InputError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { checkBuffer, viewBinding, type GpuView } from '../gpu/tensor.ts';
import { dtypeCode, storageBytes, type FloatDType } from '../io/dtypes.ts';

export interface CombineArgs {
  /** θ_base in its stored dtype; omitted for a plain weighted sum of rows (linear). */
  base?: GpuView;
  /** Factor on the base (1 for task arithmetic). */
  alpha?: number;
  /** (N, n) f32 rows: deltas or decoded models (computeDeltas). */
  rows: GPUBuffer;
  /** (N) factor per row, rounded once to f32. */
  coefficients: readonly number[];
  n: number;
  outDtype: FloatDType;
  dst?: GPUBuffer;
  /** First element of dst to write (a chunk of a larger tensor; needs dst). */
  dstOffset?: number;
}

const WG = 256;

/**
 * out (n) = alpha·base + Σ_r coef_r·rows[r] in f32, encoded to outDtype (shaders/merge/combine.wgsl).
 * One pass over the N rows for any N: the interactive DEM merge. A zero weighted sum returns
 * alpha·base untouched, so all-zero weights give the base bit for bit.
 */
export function combineRows(rt: GpuRuntime, a: CombineArgs): GPUBuffer {
  const N = a.coefficients.length;
  if (N === 0) throw new InputError('combineRows: no rows');
  const out = a.dst ?? rt.storage(`mergeCombine.${a.outDtype}`, storageBytes(a.outDtype, a.n));
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

  /** `dstOffset` (elements, default 0) and `base.offset` select a chunk of a larger tensor. */
  static create(
    rt: GpuRuntime,
    a: Omit<CombineArgs, 'coefficients' | 'alpha' | 'dst'> & { rowCount: number; dst: GPUBuffer; dstOffset?: number },
  ): PreparedCombine {
    const N = a.rowCount;
    if (!Number.isInteger(N) || N < 1) throw new InputError(`combineRows: ${N} rows`);
    checkBuffer(a.rows, 'F32', N * a.n, 'combineRows rows');
    const base = a.base && viewBinding(a.base, a.n, 'combineRows base');
    const dst = viewBinding({ buffer: a.dst, dtype: a.outDtype, offset: a.dstOffset }, a.n, 'combineRows destination');
    const wg = rt.workgroupSize(WG);
    // n % 4 == 0: combine4.wgsl, four elements per invocation over vec4 rows (same bits, faster).
    const quads = a.n % 4 === 0;
    const pipeline = rt.pipeline(quads ? 'merge/combine4' : 'merge/combine', {
      WG: wg,
      BASE_DT: dtypeCode(a.base?.dtype ?? 'F32'),
      OUT_DT: dtypeCode(a.outDtype),
      HAS_BASE: a.base ? 1 : 0,
    });
    const params = rt.createBuffer('mergeCombine.params', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    let coef: GPUBuffer;
    try {
      coef = rt.createBuffer('mergeCombine.coef', N * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    } catch (error) {
      rt.release(params);
      throw error;
    }
    const invocations = quads ? a.n / 4 : a.outDtype === 'F32' ? a.n : Math.ceil(a.n / 2);
    const bindGroup = a.n === 0 ? undefined : rt.bindGroup(pipeline, [base ?? a.rows, a.rows, coef, dst, params]);
    return new PreparedCombine(rt, a.n, N, pipeline, bindGroup, rt.grid1d(invocations, wg), params, coef);
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

  /** Records the dispatch (nothing for an empty tensor). */
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
