/**
 * Training data from one token stream: the tail `heldOutFraction` is held out; the rest is cut
 * into windows of T+1 tokens starting every T tokens (window k predicts tokens kT+1..kT+T from
 * kT..kT+T-1). Batches draw windows in a seeded shuffled order, reshuffled each epoch.
 */
import { InputError } from '../errors.ts';
import { mulberry32 } from '../random.ts';
import { IGNORE_INDEX } from './model.ts';

export interface DataPlan {
  trainTokens: number;
  heldOutTokens: number;
  /** Training windows (T+1 tokens each). */
  windows: Int32Array[];
  /** Held-out windows (2..T+1 tokens; a short last one is padded with ignored labels). */
  heldOut: Int32Array[];
}

export function planData(tokens: ArrayLike<number>, T: number, B: number, heldOutFraction: number): DataPlan {
  if (!(heldOutFraction >= 0 && heldOutFraction < 1)) throw new InputError(`held-out fraction must be in [0, 1), got ${heldOutFraction}`);
  const n = tokens.length;
  const held = heldOutFraction > 0 ? Math.max(2, Math.floor(n * heldOutFraction)) : 0;
  const trainLen = n - held;
  const count = trainLen > T ? Math.floor((trainLen - 1) / T) : 0;
  if (count < B) {
    throw new InputError(
      `the text has ${n} tokens${held ? ` (${trainLen} after holding out ${held})` : ''}: one batch of ${B} x ${T} needs at least ${B * T + 1} training tokens`,
    );
  }
  const ids = Int32Array.from(tokens);
  const windows: Int32Array[] = [];
  for (let k = 0; k < count; k++) windows.push(ids.subarray(k * T, k * T + T + 1));
  const heldOut: Int32Array[] = [];
  for (let s = trainLen; s + 1 < n; s += T) heldOut.push(ids.subarray(s, Math.min(n, s + T + 1)));
  return { trainTokens: trainLen, heldOutTokens: held, windows, heldOut };
}

/** Window indices of each of `steps` batches of B: Fisher-Yates per epoch, seeded by (seed, epoch). */
export function planBatches(windowCount: number, B: number, steps: number, seed: number): number[][] {
  const batches: number[][] = [];
  let order: number[] = [];
  let pos = 0;
  let epoch = 0;
  for (let s = 0; s < steps; s++) {
    const batch: number[] = [];
    while (batch.length < B) {
      if (pos === order.length) {
        const rand = mulberry32((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
        order = [...Array(windowCount).keys()];
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        pos = 0;
        epoch++;
      }
      batch.push(order[pos++]!);
    }
    batches.push(batch);
  }
  return batches;
}

/** (B, T) input ids and labels for a batch of windows; missing rows/positions get label IGNORE_INDEX. */
export function batchTensors(windows: readonly Int32Array[], B: number, T: number): { ids: BigInt64Array; labels: BigInt64Array; predicted: number } {
  const ids = new BigInt64Array(B * T);
  const labels = new BigInt64Array(B * T).fill(BigInt(IGNORE_INDEX));
  let predicted = 0;
  windows.forEach((w, b) => {
    for (let t = 0; t + 1 < w.length && t < T; t++) {
      ids[b * T + t] = BigInt(w[t]!);
      labels[b * T + t] = BigInt(w[t + 1]!);
      predicted++;
    }
  });
  return { ids, labels, predicted };
}
