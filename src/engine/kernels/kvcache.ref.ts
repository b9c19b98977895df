/** Float64 reference for kvcache.wgsl: writes k/v blocks of qkv (B*T, ld) into caches (B, P, KVD) at p0. */
export function kvStoreRef(
  qkv: Float64Array,
  B: number,
  T: number,
  p0: number,
  P: number,
  KVD: number,
  ld: number,
  kOff: number,
  vOff: number,
  kc: Float64Array,
  vc: Float64Array,
): void {
  for (let r = 0; r < B * T; r++) {
    const dst = (Math.floor(r / T) * P + p0 + (r % T)) * KVD;
    for (let e = 0; e < KVD; e++) {
      kc[dst + e] = qkv[r * ld + kOff + e]!;
      vc[dst + e] = qkv[r * ld + vOff + e]!;
    }
  }
}
