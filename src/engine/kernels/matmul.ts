import type { Bindable, GpuRuntime } from '../gpu/runtime.ts';
import type { WeightLayout } from '../io/roles.ts';
import type { KernelPass } from './pass.ts';
import type { WeightView } from '../gpu/tensor.ts';
import { dtypeCode } from '../io/dtypes.ts';

/**
 * Twin of shaders/model/matmul.wgsl: y (M, N) = x (M, K) · Wᵀ (+ bias), W decoded from raw words.
 * layout 'linear': W (NW, K) as nn.Linear stores it; 'conv1d': W (K, NW) as GPT-2's Conv1D does.
 * Output column n uses weight row/column n0 + n (NW ≥ n0 + N), so a caller can stream over
 * slices of a large W (the LM head), read one part of a fused matrix in place (Phi-3's gate | up)
 * and write into column blocks of a wider y (split q, k, v into the qkv workspace).
 */
export type { WeightLayout };

export interface MatmulArgs {
  M: number;
  N: number;
  K: number;
  x: Bindable; // (M, lda) f32
  lda?: number; // default K
  xoff?: number;
  w: WeightView;
  layout: WeightLayout;
  NW?: number; // rows (linear) / columns (conv1d) of W; default n0 + N
  n0?: number;
  bias?: WeightView; // (NW)
  y: Bindable; // (M, ldy) f32
  ldy?: number; // default N
  yoff?: number;
}

/** Invocations per side; each computes a 4x4 block, so a workgroup covers (4*TS, 4*TS) of y. */
const TS = 16;

/** TS for this device: a multiple of 4, each invocation loading one pair of x and of W per (BK = TS / 2)-deep step. */
export function matmulTileSide(rt: GpuRuntime): number {
  return Math.max(4, Math.floor(Math.sqrt(rt.workgroupSize(TS * TS)) / 4) * 4);
}

export function matmul(pass: KernelPass, a: MatmulArgs): void {
  const ts = matmulTileSide(pass.rt);
  const tile = 4 * ts;
  const n0 = a.n0 ?? 0;
  const bias = a.bias ?? a.w;
  const maxDim = pass.rt.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.ceil(a.N / tile);
  const gy = Math.ceil(a.M / tile);
  if (gx > maxDim || gy > maxDim) throw new RangeError(`matmul: (${a.M}, ${a.N}) needs more than ${maxDim} workgroups per dimension`);
  pass.run(
    'model/matmul',
    {
      TS: ts,
      DT_W: dtypeCode(a.w.dtype),
      DT_B: dtypeCode(bias.dtype),
      TRANS_W: a.layout === 'conv1d' ? 1 : 0,
      HAS_BIAS: a.bias ? 1 : 0,
    },
    [a.M, a.N, a.K, a.lda ?? a.K, a.xoff ?? 0, a.ldy ?? a.N, a.yoff ?? 0, n0, a.NW ?? n0 + a.N, 0, 0, 0],
    [a.x, a.w.buffer, bias.buffer, a.y],
    [gx, gy],
  );
}
