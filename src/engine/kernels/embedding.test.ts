import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, uploadWeight } from '../model/testutil.ts';
import { embedding } from './embedding.ts';
import { embeddingRef } from './embedding.ref.ts';
import { KernelPass } from './pass.ts';
import type { FloatDType } from '../io/dtypes.ts';

describe('embedding.wgsl', () => {
  for (const [dtype, learned, scale] of [['F32', true, 1], ['BF16', true, 1], ['F16', false, 1], ['BF16', false, Math.sqrt(40)]] as [FloatDType, boolean, number][]) {
    it(`gathers ${dtype} rows${learned ? ' + learned positions' : ''}${scale !== 1 ? ' scaled by √C (Gemma)' : ''} (B=2, T=13, C=40, V=301, p0=3)`, async () => {
      const seed = freshSeed();
      const next = rng(seed);
      const [B, T, C, V, P, p0] = [2, 13, 40, 301, 19, 3];
      const ids = Array.from({ length: B * T }, () => Math.floor(Math.abs(next() * 1000)) % V);
      const got = await withGpu(async (rt) => {
        const wte = uploadWeight(rt, 'wte', randn(next, V * C), dtype);
        const wpe = uploadWeight(rt, 'wpe', randn(next, P * C), dtype);
        const out = rt.storage('out', B * T * C * 4);
        const pass = new KernelPass(rt, 'test.embedding');
        embedding(pass, { rows: B * T, T, C, p0, ids: rt.upload('ids', Uint32Array.from(ids)), wte: wte.ref, wpe: learned ? wpe.ref : undefined, scale, out });
        pass.submit();
        const want = embeddingRef(ids, T, C, p0, wte.values, learned ? wpe.values : undefined, scale);
        return { got: await rt.readF32(out), want };
      });
      checkClose('embedding', got.got, got.want, 1e-6, 1e-6, seed);
      expect(got.got.length).toBe(B * T * C);
    });
  }
});
