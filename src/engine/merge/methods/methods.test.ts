import { afterAll, describe, expect, it } from 'vitest';
import { withGpu } from '../../../testing/gpu.ts';
import type { FloatDType } from '../../io/dtypes.ts';
import { decodeArray } from '../../kernels/decode.ref.ts';
import { deltaChunkElements } from '../../kernels/mergeDeltas.ts';
import { METHODS } from '../registry.ts';
import { compareOutput, fineTunes, randomValues, signElection, uploadTensor } from '../testkit.ts';
import { ties } from './generalized.ts';
import { linear } from './linear.ts';
import { taskArithmetic } from './taskArithmetic.ts';
import type { MergeParams } from './types.ts';

/**
 * Every method, GPU against its float64 reference, on fresh random tensors of awkward sizes
 * and every dtype. F32 output: |gpu − ref| <= 1e-6 + 1e-6·|ref|. F16/BF16 output: the GPU bits
 * against the reference rounded once (RNE) — the GPU rounds its f32 result, so an element whose
 * exact value lies within f32 error of a rounding midpoint may land 1 ulp away; allowed: 1 ulp.
 * Sign elections decided by less than 1e-5 of Σ|v| (a coin flip in f32) are skipped and counted.
 */
const SIZES = [1, 7, 1000, 4099, 70001];
const CASES: { name: string; base: FloatDType; models: FloatDType[]; out: FloatDType }[] = [
  { name: 'F32', base: 'F32', models: ['F32', 'F32', 'F32'], out: 'F32' },
  { name: 'F16', base: 'F16', models: ['F16', 'F16', 'F16'], out: 'F16' },
  { name: 'BF16', base: 'BF16', models: ['BF16', 'BF16', 'BF16'], out: 'BF16' },
  { name: 'mixed->F32', base: 'BF16', models: ['F16', 'F32', 'BF16'], out: 'F32' },
];
const PARAMS: Record<string, MergeParams> = {
  task_arithmetic: { lambda: 0.9 },
  linear: {},
  ties: { density: [0.5, 0.3, 0.8], lambda: 1.2 },
  dare_linear: { density: [0.5, 0.3, 0.8], seed: 7 },
  dare_ties: { density: 0.6, normalize: true, seed: 7 },
  breadcrumbs: { density: [0.7, 0.8, 0.9], gamma: 0.05 },
  breadcrumbs_ties: { density: 0.8, gamma: [0.01, 0.1, 0.02] },
  slerp: { t: 0.3 },
  model_stock: {},
};

const stats: string[] = [];
afterAll(() => console.log(`worst error per method/dtype (F32: relative to max(1,|ref|); F16/BF16: ulps, exact share):\n${stats.join('\n')}`));

describe.each(METHODS.map((m) => [m.name, m] as const))('%s: GPU vs float64 reference', (name, method) => {
  const results: string[] = [];
  afterAll(() => stats.push(`${name.padEnd(17)} ${results.join('  ')}`));
  for (const c of CASES) {
    it(`${c.name} at n = ${SIZES.join(', ')}`, async () => {
      let worst = 0;
      let exact = 0;
      let total = 0;
      let ambiguous = 0;
      for (const n of SIZES) {
        await withGpu(async (rt) => {
          const N = method.maxModels === 1 ? 1 : 3;
          const baseValues = randomValues(n);
          const near = fineTunes(baseValues, N, 0.2);
          // slerp needs a real angle: a partly correlated independent tensor.
          // model_stock needs correlated deltas (a shared direction) for a ratio t away from 0.
          const shared = randomValues(n, 0.1);
          const modelValues =
            name === 'slerp' ? [baseValues.map((x) => 0.3 * x + Math.random() - 0.5)]
            : name === 'model_stock' ? near.map((v) => v.map((x, i) => x + shared[i]!))
            : near;
          const base = uploadTensor(rt, 'base', baseValues, c.base);
          const models = modelValues.map((v, i) => uploadTensor(rt, `model${i}`, v, c.models[i]!));
          const weights = N === 1 ? [1] : [0.7, -0.4, 1.3];
          const ctx = { tensorIndex: 3, tensor: `t${n}` };
          const params = PARAMS[name] ?? {};
          const out = await method.gpu(rt, { n, base: base.gpu, models: models.map((m) => m.gpu), weights, outDtype: c.out }, params, ctx);
          const want = method.cpu(method.capabilities.needsBase ? base.values : undefined, models.map((m) => m.values), weights, params, ctx);
          const bytes = await rt.read(out);
          // Coin-flip sign elections (consensus methods) may take either sign: see signElection.
          const election = signElection(method, base.values, models.map((m) => m.values), weights, params, ctx);
          const ref = election ? election.pick(decodeArray(bytes, c.out, n), want) : want;
          const cmp = compareOutput(bytes, ref, c.out);
          ambiguous += election?.ambiguous ?? 0;
          expect(cmp.mismatches, `n = ${n}`).toEqual([]);
          worst = Math.max(worst, cmp.worst);
          exact += cmp.exact;
          total += n;
        });
      }
      results.push(c.out === 'F32' ? `${c.name}: ${worst.toExponential(1)}` : `${c.name}: ${worst} ulp, ${((100 * exact) / total).toFixed(2)}% exact`);
      if (ambiguous) results.push(`(${ambiguous} coin-flip signs, either answer accepted)`);
    });
  }
});

describe('a tensor whose packed Δ exceeds the device\'s largest binding', () => {
  it('task_arithmetic and linear merge it in aligned chunks with the same bits as one pass; ties refuses it by name', async () => {
    await withGpu(async (rt) => {
      const n = 70_001;
      const baseValues = randomValues(n);
      const near = fineTunes(baseValues, 3, 0.2);
      const real = rt.limits;
      // (3, 70001) f32 is 840,012 bytes; a 240,000-byte limit gives chunks of 78 × 256 = 19968 elements (4 chunks).
      const limited = new Proxy(real, { get: (target, key) => (key === 'maxStorageBufferBindingSize' ? 240_000 : (Reflect.get(target, key) as unknown)) });
      expect(deltaChunkElements(limited, 3, n)).toBe(19_968);
      for (const dtype of ['F32', 'BF16'] as const) {
        const base = uploadTensor(rt, 'base', baseValues, dtype);
        const models = near.map((v, i) => uploadTensor(rt, `model${i}`, v, dtype));
        const ctx = { tensorIndex: 3, tensor: 'big' };
        const inputs = { n, base: base.gpu, models: models.map((m) => m.gpu), weights: [0.7, -0.4, 1.3], outDtype: dtype };
        for (const method of [taskArithmetic, linear]) {
          const params: MergeParams = method === taskArithmetic ? { lambda: 0.9 } : {};
          const whole = new Uint8Array(await rt.read(await method.gpu(rt, inputs, params, ctx)));
          Object.defineProperty(rt, 'limits', { configurable: true, get: () => limited });
          let chunked: Uint8Array;
          try {
            chunked = new Uint8Array(await rt.read(await method.gpu(rt, inputs, params, ctx)));
          } finally {
            delete (rt as { limits?: unknown }).limits;
          }
          expect(Buffer.from(chunked).equals(Buffer.from(whole)), `${method.name} ${dtype}`).toBe(true);
          const ref = method.cpu(base.values, models.map((m) => m.values), inputs.weights, params, ctx);
          expect(compareOutput(chunked.buffer as ArrayBuffer, ref, dtype).mismatches, `${method.name} ${dtype}`).toEqual([]);
        }
        Object.defineProperty(rt, 'limits', { configurable: true, get: () => limited });
        try {
          await expect(ties.gpu(rt, inputs, { density: 0.5 }, ctx)).rejects.toThrow(
            "tensor 'big': ties needs all 3 distribution vectors of this tensor in one buffer (840012 bytes), more than this device's largest binding (240000 bytes); " +
              'task_arithmetic and linear merge such tensors in chunks',
          );
        } finally {
          delete (rt as { limits?: unknown }).limits;
        }
      }
    });
  });
});
