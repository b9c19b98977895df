import type { Bindable } from '../gpu/runtime.ts';
import type { KernelPass } from './pass.ts';

/**
 * Twin of shaders/model/kvcache.wgsl: copies the k and v column blocks (KVD wide, at k_off/v_off)
 * of each fused qkv row (B*T, ld) into cache rows (b, p0 + t) of kc/vc (B, P, KVD).
 */
export interface KvStoreArgs {
  B: number;
  T: number;
  p0: number;
  P: number;
  KVD: number;
  qkv: Bindable;
  ld: number;
  kOff: number;
  vOff: number;
  kc: Bindable;
  vc: Bindable;
}

export function kvStore(pass: KernelPass, a: KvStoreArgs): void {
  const wg = pass.rt.workgroupSize(256);
  const rows = a.B * a.T;
  pass.run('model/kvcache', { WG: wg }, [rows, a.T, a.p0, a.P, a.KVD, a.ld, a.kOff, a.vOff], [a.qkv, a.kc, a.vc], pass.rt.grid1d(rows * a.KVD, wg));
}
