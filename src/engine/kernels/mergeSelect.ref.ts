import { absBits, kthLargestBits } from '../merge/reference.ts';

/** Reference for merge/select: per row and rank, the k-th largest |x| f32 bit pattern, by sorting. */
export function selectAbsRanksRef(rows: readonly Float32Array[], ranks: ArrayLike<number>, K: number): Uint32Array {
  const out = new Uint32Array(rows.length * K);
  rows.forEach((row, r) => {
    const bits = Uint32Array.from(row, absBits);
    for (let q = 0; q < K; q++) out[r * K + q] = kthLargestBits(bits, ranks[r * K + q]!);
  });
  return out;
}
