import { Q8_BLOCK, type RowCode } from './mergeRows.ts';
import { decodeArray, encodeArray } from './decode.ref.ts';

/** Round half to even (WGSL's round). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Reference for merge/compress: what a compressed row holds, decoded, for Δ values already
 * rounded to f32 (the kernel's subtraction). Q8: per block of 64, s = f32(max|Δ| / 127),
 * q = clamp(round(Δ / s), −127, 127) (0 when s = 0), value f32(q·s); float codes: Δ rounded
 * to that dtype. `q` and `scales` are returned too (the GPU's division may sit 1 ulp away, so a
 * quotient within rounding of a half can round the other way: tests allow exactly that).
 */
export function compressRowRef(delta32: Float32Array, code: RowCode): { values: Float64Array; q?: Int8Array; scales?: Float32Array; quotient?: Float64Array } {
  const n = delta32.length;
  if (code !== 'Q8') return { values: decodeArray(encodeArray(delta32, code), code, n) };
  const blocks = Math.ceil(n / Q8_BLOCK);
  const scales = new Float32Array(blocks);
  const q = new Int8Array(n);
  const quotient = new Float64Array(n);
  const values = new Float64Array(n);
  for (let b = 0; b < blocks; b++) {
    let m = 0;
    for (let i = b * Q8_BLOCK; i < Math.min(n, (b + 1) * Q8_BLOCK); i++) m = Math.max(m, Math.abs(delta32[i]!));
    const s = Math.fround(m / 127);
    scales[b] = s;
    for (let i = b * Q8_BLOCK; i < Math.min(n, (b + 1) * Q8_BLOCK); i++) {
      quotient[i] = s > 0 ? delta32[i]! / s : 0;
      q[i] = s > 0 ? Math.max(-127, Math.min(127, roundHalfEven(quotient[i]!))) : 0;
      values[i] = Math.fround(q[i]! * s);
    }
  }
  return { values, q, scales, quotient };
}
