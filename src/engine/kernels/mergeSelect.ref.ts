import { absBits, keyOrder, kthLargestKey } from '../merge/reference.ts';
import type { KeyBound, SelectedKey } from './mergeSelect.ts';

/**
 * Reference for merge/select: per row and rank, the key (|x| f32 bits, ~index) of the k-th
 * largest, by sorting — normalised as the kernel answers when the magnitude settles a bound: a
 * lower bound whose rank takes every element of its magnitude has index word 0, an upper bound
 * whose rank is the first of its magnitude has 0xFFFFFFFF (the same elements kept).
 */
export function selectKeysRef(rows: readonly Float32Array[], ranks: ArrayLike<number>, bounds: readonly KeyBound[]): SelectedKey[] {
  const K = bounds.length;
  const out: SelectedKey[] = [];
  rows.forEach((row, r) => {
    const bits = Uint32Array.from(row, absBits);
    const order = keyOrder(bits);
    for (let q = 0; q < K; q++) {
      const k = ranks[r * K + q]!;
      const key = kthLargestKey(bits, k, order);
      if (k > 0) {
        const same = (rank: number): boolean => rank >= 1 && rank <= order.length && bits[order[rank - 1]!] === key.hi;
        if (bounds[q] === 'lower' && !same(k + 1)) key.lo = 0;
        if (bounds[q] === 'upper' && !same(k - 1)) key.lo = 0xffffffff;
      }
      out.push(key);
    }
  });
  return out;
}
