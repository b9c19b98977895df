import { describe, expect, it } from 'vitest';
import { withGpu } from '../../testing/gpu.ts';
import { checkClose, freshSeed, randn, rng, roundF32, uploadF32 } from '../model/testutil.ts';
import { attention } from './attention.ts';
import { attentionRef } from './attention.ref.ts';
import { kvStore } from './kvcache.ts';
import { kvStoreRef } from './kvcache.ref.ts';
import { KernelPass } from './pass.ts';

function split(qkv: Float64Array, rows: number, ld: number, off: number, width: number): Float64Array {
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) for (let e = 0; e < width; e++) out[r * width + e] = qkv[r * ld + off + e]!;
  return out;
}

describe('attention.wgsl', () => {
  // [NH, NKV, HS, T, window]: window 0 is plain causal; a window W > 0 hides keys at or before i - W.
  const cases: [number, number, number, number, number][] = [
    [4, 2, 10, 13, 0], [3, 3, 16, 70, 0], [2, 1, 130, 9, 0], [2, 1, 64, 301, 0], [2, 2, 96, 40, 0], [1, 1, 130, 47, 0],
    [4, 2, 10, 45, 7], [3, 3, 16, 70, 31], [2, 1, 64, 301, 129], [2, 2, 8, 20, 1],
  ];
  for (const [NH, NKV, HS, T, window] of cases) {
    it(`causal GQA from a fused qkv buffer: B=2, T=${T}, NH=${NH}, NKV=${NKV}, HS=${HS}${window ? `, sliding window ${window}` : ''}`, async () => {
      const seed = freshSeed();
      const next = rng(seed);
      const B = 2;
      const QD = NH * HS;
      const KVD = NKV * HS;
      const ld = QD + 2 * KVD;
      const qkv = roundF32(randn(next, B * T * ld));
      const { got } = await withGpu(async (rt) => {
        const buf = uploadF32(rt, 'qkv', qkv);
        const out = rt.storage('out', B * T * QD * 4);
        const pass = new KernelPass(rt, 'test.attention');
        attention(pass, {
          B, T, p0: 0, NH, NKV, HS, window,
          q: { buffer: buf, bs: T * ld, ld, off: 0 },
          k: { buffer: buf, bs: T * ld, ld, off: QD },
          v: { buffer: buf, bs: T * ld, ld, off: QD + KVD },
          out,
        });
        pass.submit();
        return { got: await rt.readF32(out) };
      });
      const rows = B * T;
      const want = attentionRef(split(qkv, rows, ld, 0, QD), split(qkv, rows, ld, QD, KVD), split(qkv, rows, ld, QD + KVD, KVD), B, T, 0, NH, NKV, HS, window);
      checkClose('attention', got, want, 1e-5, 1e-4, seed);
      if (window > 0) {
        // The window must matter here: plain causal attention gives different rows.
        const causal = attentionRef(split(qkv, rows, ld, 0, QD), split(qkv, rows, ld, QD, KVD), split(qkv, rows, ld, QD + KVD, KVD), B, T, 0, NH, NKV, HS);
        expect(() => checkClose('causal', got, causal, 1e-5, 1e-4, seed)).toThrow(/mismatches/);
      }
    });
  }

  it('Gemma 2 scores: scale query_pre_attn_scalar^-1/2, soft cap c·tanh(s/c), sliding window (B=2, T=37, NH=4, NKV=2, HS=32)', async () => {
    const seed = freshSeed();
    const next = rng(seed);
    const [B, T, NH, NKV, HS, window, scale, softcap] = [2, 37, 4, 2, 32, 9, 1 / Math.sqrt(24), 2.5];
    const QD = NH * HS;
    const KVD = NKV * HS;
    const ld = QD + 2 * KVD;
    // Scores of a few units, so the cap at 2.5 bends most of them.
    const qkv = roundF32(randn(next, B * T * ld, 0.8));
    const got = await withGpu(async (rt) => {
      const buf = uploadF32(rt, 'qkv', qkv);
      const out = rt.storage('out', B * T * QD * 4);
      const pass = new KernelPass(rt, 'test.attention.softcap');
      attention(pass, {
        B, T, p0: 0, NH, NKV, HS, window, scale, softcap,
        q: { buffer: buf, bs: T * ld, ld, off: 0 },
        k: { buffer: buf, bs: T * ld, ld, off: QD },
        v: { buffer: buf, bs: T * ld, ld, off: QD + KVD },
        out,
      });
      pass.submit();
      return rt.readF32(out);
    });
    const rows = B * T;
    const args = [split(qkv, rows, ld, 0, QD), split(qkv, rows, ld, QD, KVD), split(qkv, rows, ld, QD + KVD, KVD), B, T, 0, NH, NKV, HS, window] as const;
    checkClose('attention (scale, softcap)', got, attentionRef(...args, scale, softcap), 1e-5, 1e-4, seed);
    expect(() => checkClose('no cap', got, attentionRef(...args, scale), 1e-5, 1e-4, seed)).toThrow(/mismatches/);
    expect(() => checkClose('default scale', got, attentionRef(...args, 1 / Math.sqrt(HS), softcap), 1e-5, 1e-4, seed)).toThrow(/mismatches/);
  });

  it.each([0, 6])('KV cache: store keys of positions [p0, p0+T) then attend to [0, p0+T), B=2, p0=11, T=5, P=19, window %i', async (window) => {
    const seed = freshSeed();
    const next = rng(seed);
    const [B, NH, NKV, HS, p0, T, P] = [2, 4, 2, 10, 11, 5, 19];
    const QD = NH * HS;
    const KVD = NKV * HS;
    const ld = QD + 2 * KVD;
    const qkv = roundF32(randn(next, B * T * ld));
    // Cache rows [0, p0) hold earlier steps; rows beyond p0+T hold junk the kernel must not read.
    const kc = roundF32(randn(next, B * P * KVD));
    const vc = roundF32(randn(next, B * P * KVD));
    const got = await withGpu(async (rt) => {
      const buf = uploadF32(rt, 'qkv', qkv);
      const kb = uploadF32(rt, 'kc', kc);
      const vb = uploadF32(rt, 'vc', vc);
      const out = rt.storage('out', B * T * QD * 4);
      const pass = new KernelPass(rt, 'test.attention.cache');
      kvStore(pass, { B, T, p0, P, KVD, qkv: buf, ld, kOff: QD, vOff: QD + KVD, kc: kb, vc: vb });
      attention(pass, {
        B, T, p0, NH, NKV, HS, window,
        q: { buffer: buf, bs: T * ld, ld, off: 0 },
        k: { buffer: kb, bs: P * KVD, ld: KVD, off: 0 },
        v: { buffer: vb, bs: P * KVD, ld: KVD, off: 0 },
        out,
      });
      pass.submit();
      return { out: await rt.readF32(out), kc: await rt.readF32(kb), vc: await rt.readF32(vb) };
    });
    kvStoreRef(qkv, B, T, p0, P, KVD, ld, QD, QD + KVD, kc, vc);
    checkClose('kv store k', got.kc, kc, 0, 0, seed);
    checkClose('kv store v', got.vc, vc, 0, 0, seed);
    const S = p0 + T;
    const prefix = (c: Float64Array): Float64Array => {
      const o = new Float64Array(B * S * KVD);
      for (let b = 0; b < B; b++) o.set(c.subarray(b * P * KVD, (b * P + S) * KVD), b * S * KVD);
      return o;
    };
    const want = attentionRef(split(qkv, B * T, ld, 0, QD), prefix(kc), prefix(vc), B, T, p0, NH, NKV, HS, window);
    checkClose('attention with cache', got.out, want, 1e-5, 1e-4, seed);
  });
});
