import type { GpuRuntime } from '../gpu/runtime.ts';
import { mulberry32 } from '../random.ts';
import type { WeightView } from '../gpu/tensor.ts';
import type { FloatDType } from '../io/dtypes.ts';
import { decodeWeights, encodeWeights } from '../kernels/weights.ts';

/**
 * Helpers for the model kernel tests: a seeded normal RNG (seed printed on failure so a run can
 * be replayed), weights round-tripped through a stored dtype, and an atol + rtol·|ref| check that
 * reports the first mismatches.
 */
export function rng(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => {
    const u = Math.max(uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
}

export function freshSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

export function randn(next: () => number, n: number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => next() * scale);
}

/** Values as a checkpoint of `dtype` would store them: the raw bytes and their exact decoding. */
export function asStored(values: Float64Array, dtype: FloatDType): { bytes: Uint8Array; values: Float64Array } {
  const bytes = encodeWeights(values, dtype);
  return { bytes, values: decodeWeights(bytes, dtype) };
}

export function uploadWeight(rt: GpuRuntime, label: string, values: Float64Array, dtype: FloatDType): { ref: WeightView; values: Float64Array } {
  const s = asStored(values, dtype);
  return { ref: { buffer: rt.upload(label, s.bytes), dtype }, values: s.values };
}

export function uploadF32(rt: GpuRuntime, label: string, values: ArrayLike<number>): GPUBuffer {
  return rt.upload(label, Float32Array.from(values));
}

/** Float64 copy of what f32 storage holds (the GPU kernels' inputs are f32). */
export function roundF32(values: Float64Array): Float64Array {
  return Float64Array.from(Float32Array.from(values));
}

/**
 * Throws listing the first mismatches when |got - want| > atol + rtol·|want| anywhere; returns
 * the largest |got - want| / (|want| + atol) so tests can report measured error.
 */
export function checkClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number, seed?: number): number {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length} != ${want.length}`);
  const bad: string[] = [];
  let nbad = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    const err = Math.abs(g - w);
    worst = Math.max(worst, Number.isNaN(err) ? Infinity : err / (Math.abs(w) + atol));
    if (!(err <= atol + rtol * Math.abs(w))) {
      nbad++;
      if (bad.length < 8) bad.push(`  [${i}] got ${g} want ${w} (|diff| ${err.toExponential(2)})`);
    }
  }
  if (nbad > 0) {
    throw new Error(`${what}: ${nbad}/${want.length} mismatches (atol ${atol}, rtol ${rtol}${seed === undefined ? '' : `, seed ${seed}`}):\n${bad.join('\n')}`);
  }
  return worst;
}
