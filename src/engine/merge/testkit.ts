import type { GpuRuntime } from '../gpu/runtime.ts';
import type { GpuView } from '../gpu/tensor.ts';
import { storageBytes, type FloatDType } from '../io/dtypes.ts';
import { compressRow } from '../kernels/mergeCompress.ts';
import { createTensorRows, packModels, Q8_BLOCK, type RowCode, type TensorRows } from '../kernels/mergeRows.ts';
import { decodeArray, elementBits, encodeArray, numberToBf16Bits, numberToF16Bits } from '../kernels/decode.ref.ts';
import { generalizedOptions } from './methods/generalized.ts';
import { resolveParams } from './methods/params.ts';
import type { MergeContext, MergeMethod, MergeParams } from './methods/types.ts';
import { generalizedTaskArithmetic } from './reference.ts';

/**
 * Test helpers for the merge kernels and methods (used by *.test.ts only): random tensors in a
 * stored dtype, and comparisons against float64 references that report the first mismatches.
 */

/** Uniform in ±scale, never exactly zero. */
export function randomValues(n: number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => (Math.random() * 2 - 1) * scale || scale / 3);
}

export interface TestTensor {
  gpu: GpuView;
  /** The exact stored values (after rounding to the dtype). */
  values: Float64Array;
}

export function uploadTensor(rt: GpuRuntime, label: string, values: ArrayLike<number>, dtype: FloatDType): TestTensor {
  const bytes = encodeArray(values, dtype);
  return { gpu: { buffer: rt.upload(label, bytes), dtype }, values: decodeArray(bytes, dtype, values.length) };
}

/** Base plus `count` fine-tunes near it (θ + small Δ), like real distribution vectors. */
export function fineTunes(base: Float64Array, count: number, spread = 0.05): Float64Array[] {
  return Array.from({ length: count }, () => base.map((x) => x + (Math.random() * 2 - 1) * spread * (Math.abs(x) + 0.01)));
}

const ordered16 = (h: number): number => (h & 0x8000 ? 0x8000 - (h & 0x7fff) : 0x8000 + h);

export interface Comparison {
  /** Messages for the first mismatches (empty when all pass). */
  mismatches: string[];
  /** F32: max |gpu − ref| / max(1, |ref|). F16/BF16: max distance in ulps. */
  worst: number;
  /** F16/BF16: how many elements equal the RNE-rounded reference bit for bit. */
  exact: number;
  n: number;
}

/**
 * F32: |gpu − ref| <= atol + rtol·|ref| (atol = rtol = 1e-6 by default). F16/BF16: the GPU bits
 * against the reference rounded once with RNE, allowing `ulps` (1: the f32 result may sit on the
 * other side of a rounding midpoint) or any pattern that is the RNE of a value within the F32
 * tolerance of the reference. `worst` reports the ulps either way.
 */
export function compareOutput(bytes: ArrayBuffer, ref: Float64Array, dtype: FloatDType, opts: { rtol?: number; atol?: number; ulps?: number; skip?: (i: number) => boolean } = {}): Comparison {
  const n = ref.length;
  const mismatches: string[] = [];
  let worst = 0;
  let exact = 0;
  if (dtype === 'F32') {
    const rtol = opts.rtol ?? 1e-6;
    const atol = opts.atol ?? 1e-6;
    const got = decodeArray(bytes, 'F32', n);
    for (let i = 0; i < n; i++) {
      if (opts.skip?.(i)) continue;
      const err = Math.abs(got[i]! - ref[i]!);
      worst = Math.max(worst, err / Math.max(1, Math.abs(ref[i]!)));
      if (got[i] === Math.fround(ref[i]!)) exact++;
      if (!(err <= atol + rtol * Math.abs(ref[i]!)) && mismatches.length < 8) mismatches.push(`[${i}] gpu ${got[i]} ref ${ref[i]} err ${err.toExponential(2)}`);
    }
  } else {
    const ulps = opts.ulps ?? 1;
    const rtol = opts.rtol ?? 1e-6;
    const atol = opts.atol ?? 1e-6;
    const bits = elementBits(bytes, dtype, n);
    const enc = dtype === 'F16' ? numberToF16Bits : numberToBf16Bits;
    for (let i = 0; i < n; i++) {
      if (opts.skip?.(i)) continue;
      const r = ref[i]!;
      const want = enc(r);
      const g = ordered16(bits[i]!);
      const d = Math.abs(g - ordered16(want));
      // Also fine: the rounding of any f32 result within the F32 tolerance of the reference
      // (matters where the result cancels to ~0 and a narrow ulp is below that tolerance).
      const eps = atol + rtol * Math.abs(r);
      const inBand = g >= ordered16(enc(r - eps)) && g <= ordered16(enc(r + eps));
      worst = Math.max(worst, d);
      if (d === 0) exact++;
      if (d > ulps && !inBand && mismatches.length < 8) mismatches.push(`[${i}] gpu 0x${bits[i]!.toString(16)} ref 0x${want.toString(16)} (${r}) ${d} ulps`);
    }
  }
  return { mismatches, worst, exact, n };
}

/** Sign elections decided by less than this share of Σ|v| can go either way in f32. */
export const AMBIGUOUS_MARGIN = 1e-5;

export interface SignElection {
  /** Elements whose election is ambiguous. */
  ambiguous: number;
  /** `want`, except at ambiguous elements, where the reference with the other sign is taken when it is nearer `got`. */
  pick(got: ArrayLike<number>, want: Float64Array): Float64Array;
}

/**
 * Consensus (TIES-style) methods elect a sign per element from Σ_r v_r. Where |Σ v| < 1e-5·Σ|v|
 * the f32 GPU sum may land on the other side of zero than the float64 one (with BF16 inputs
 * exact cancellations are ~0.1% of elements), and then the other election is an equally right
 * answer: every element is still checked, against whichever of the two references it is nearer.
 * Undefined for methods without a sign election.
 */
export function signElection(
  method: MergeMethod,
  base: Float64Array,
  models: readonly Float64Array[],
  weights: readonly number[],
  params: MergeParams,
  ctx: MergeContext,
): SignElection | undefined {
  const m = method as MergeMethod & { sparsify?: 'magnitude' | 'random' | 'outliers'; consensus?: boolean };
  if (!m.consensus || !m.sparsify) return undefined;
  const n = base.length;
  const margin = new Float64Array(n);
  const options = generalizedOptions(m.sparsify, true, resolveParams(method, params, models.length), ctx);
  generalizedTaskArithmetic(base, models, weights, { ...options, margin });
  const flip = Uint8Array.from(margin, (x) => (x < AMBIGUOUS_MARGIN ? 1 : 0));
  const ambiguous = flip.reduce((a, b) => a + b, 0);
  const other = ambiguous ? generalizedTaskArithmetic(base, models, weights, { ...options, flip }) : undefined;
  return {
    ambiguous,
    pick(got, want) {
      if (!other) return want;
      return want.map((w, i) => (flip[i] && Math.abs(got[i]! - other[i]!) < Math.abs(got[i]! - w) ? other[i]! : w));
    },
  };
}

/** The models' tensors packed into rows (one chunk unless the device's limits say otherwise). */
export function modelRows(rt: GpuRuntime, models: readonly TestTensor[], n: number): TensorRows {
  return packModels(rt, models.map((m) => m.gpu), n);
}

/**
 * Δ rows compressed to `code` (compressRow) from models already on the GPU; with the decoded
 * values each row holds, from the row buffer itself (for references built on what the GPU keeps).
 */
export async function deltaRows(rt: GpuRuntime, base: TestTensor, models: readonly TestTensor[], n: number, code: RowCode): Promise<{ rows: TensorRows; values: Float64Array[] }> {
  const rows = createTensorRows(rt, 'test.deltas', models.map(() => code), n, 'deltas');
  for (const c of rows.chunks) {
    models.forEach((m, r) => compressRow(rt, { x: { ...m.gpu, offset: c.offset }, base: { ...base.gpu, offset: c.offset }, rows: c.rows, r }));
  }
  const values = models.map(() => new Float64Array(n));
  for (const c of rows.chunks) {
    const words = new Uint32Array(await rt.read(c.rows.buffer));
    models.forEach((_, r) => values[r]!.set(decodeRow(words, c.rows.layout.offsets[r]!, c.rows.layout.scales[r]!, code, c.rows.n), c.offset));
  }
  return { rows, values };
}

/** The values of one row as the kernels read them (shaders/common/rows.wgsl row_stored), decoded on the CPU. */
export function decodeRow(words: Uint32Array, offset: number, scale: number, code: RowCode, n: number): Float64Array {
  if (code !== 'Q8') return decodeArray(new Uint8Array(words.buffer, words.byteOffset + offset * 4, storageBytes(code, n)), code, n);
  const bytes = new Int8Array(words.buffer, words.byteOffset + offset * 4, n);
  const scales = new Float32Array(words.buffer, words.byteOffset + scale * 4, Math.ceil(n / Q8_BLOCK));
  return Float64Array.from(bytes, (q, i) => Math.fround(q * scales[Math.floor(i / Q8_BLOCK)]!));
}
