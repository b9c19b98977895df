import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32, uploadWeight } from '../model/testutil.ts';
import { headNorm } from './headnorm.ts';
import { headNormRef } from './headnorm.ref.ts';
import { KernelPass } from './pass.ts';
import type { FloatDType } from '../io/dtypes.ts';

describe('headnorm.wgsl', () => {
  // A fused qkv buffer (rows, (NH + 2 NKV) HS) with NH = 4, NKV = 2, HS = 24: per head (Qwen3's
  // q_norm on the q block, k_norm on the k block) and over the whole projection (OLMo 2's).
  const [rows, NH, NKV, HS] = [13, 4, 2, 24];
  const QD = NH * HS;
  const KVD = NKV * HS;
  const ld = QD + 2 * KVD;
  const cases: [string, number, number, number, FloatDType][] = [
    ['q per head (G = NH, W = HS)', 0, NH, HS, 'BF16'],
    ['k per head (G = NKV, W = HS)', QD, NKV, HS, 'F32'],
    ['q over the projection (G = 1, W = NH·HS)', 0, 1, QD, 'F16'],
    ['k over the projection (G = 1, W = NKV·HS)', QD, 1, KVD, 'BF16'],
  ];
  for (const [name, off, G, W, dtype] of cases) {
    it(`normalises ${name} in place and leaves the other columns alone, ${dtype} scale`, async () => {
      const seed = freshSeed();
      const next = rng(seed);
      const buf = roundF32(randn(next, rows * ld, 2).map((v, i) => v + (i % 5) - 2));
      const { got, w } = await withGpu(async (rt) => {
        const w = uploadWeight(rt, 'w', randn(next, W, 0.3).map((v) => 1 + v), dtype);
        const b = uploadF32(rt, 'qkv', buf);
        const pass = new KernelPass(rt, 'test.headnorm');
        headNorm(pass, { rows, G, W, ld, off, eps: 1e-6, w: w.ref, buf: b });
        pass.submit();
        return { got: await rt.readF32(b), w: w.values };
      });
      const want = buf.slice();
      headNormRef(want, rows, ld, off, G, W, w, 1e-6);
      checkClose('headnorm', got, want, 1e-5, 1e-4, seed);
      // Columns outside [off, off + G·W) are untouched, bit for bit.
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < ld; c++) if (c < off || c >= off + G * W) expect(got[r * ld + c]).toBe(buf[r * ld + c]);
      }
    });
  }
});
