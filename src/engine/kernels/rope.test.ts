import { describe, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32 } from '../model/testutil.ts';
import { rope, ropeTable } from './rope.ts';
import { ropeRef } from './rope.ref.ts';
import { KernelPass } from './pass.ts';

describe('rope.wgsl', () => {
  it('rotates q and k heads of a fused qkv buffer in place, B=2, T=13, HS=10, p0=7', async () => {
    const seed = freshSeed();
    const next = rng(seed);
    // Fused (B*T, (NH + 2 NKV) HS): rotate the NH + NKV = 6 q/k heads, leave v alone.
    const [B, T, HS, NH, NKV, p0, theta] = [2, 13, 10, 4, 2, 7, 10000];
    const ld = (NH + 2 * NKV) * HS;
    const buf = roundF32(randn(next, B * T * ld));
    const got = await withGpu(async (rt) => {
      const b = uploadF32(rt, 'qkv', buf);
      const pass = new KernelPass(rt, 'test.rope');
      const table = rt.upload('rope.table', ropeTable(p0 + T, HS, theta));
      rope(pass, { rows: B * T, T, p0, ld, off: 0, nheads: NH + NKV, HS, table, buf: b });
      pass.submit();
      return rt.readF32(b);
    });
    const want = buf.slice();
    ropeRef(want, B * T, T, p0, ld, 0, NH + NKV, HS, theta);
    // The table uses HF's f32 angles pos * inv_freq; the reference uses exact ones (≤ 1 ulp apart).
    checkClose('rope', got, want, 1e-5, 1e-4, seed);
  });
});
