import { afterAll, describe, expect, it } from 'vitest';
import { withGpu } from '../../../testing/gpu.ts';
import type { FloatDType } from '../../io/dtypes.ts';
import { decodeArray } from '../../kernels/decode.ref.ts';
import { rowChunkElements } from '../../kernels/mergeRows.ts';
import { METHODS } from '../registry.ts';
import { compareOutput, fineTunes, randomValues, signElection, uploadTensor } from '../testkit.ts';
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

describe('a tensor whose rows exceed the device largest binding', () => {
  for (const dtype of ['F32', 'BF16'] as const) it(`every method merges it in aligned chunks with the same bits as one pass (selections, norms and angles across chunks), ${dtype}`, async () => {
    await withGpu(async (rt) => {
      const n = 20_001;
      const baseValues = randomValues(n);
      const near = fineTunes(baseValues, 3, 0.2);
      const real = rt.limits;
      // (3, 20001) BF16 rows are 120,012 bytes; a 30,000-byte binding gives chunks of 4 × 1024 elements (5 chunks; F32: 10).
      const limited = new Proxy(real, { get: (target, key) => (key === 'maxStorageBufferBindingSize' ? 30_000 : (Reflect.get(target, key) as unknown)) });
      expect(rowChunkElements(limited, ['BF16', 'BF16', 'BF16'], n)).toBe(4096);
      {
        const base = uploadTensor(rt, 'base', baseValues, dtype);
        for (const method of METHODS) {
          const N = method.maxModels === 1 ? 1 : 3;
          const models = near.slice(0, N).map((v, i) => uploadTensor(rt, `model${i}`, v, dtype));
          const ctx = { tensorIndex: 3, tensor: 'big' };
          const params: MergeParams = { ...(PARAMS[method.name] ?? {}), ...(method.params.some((p) => p.name === 'rescale') ? { rescale: 'l1' } : {}) };
          const inputs = { n, base: base.gpu, models: models.map((m) => m.gpu), weights: N === 1 ? [1] : [0.7, -0.4, 1.3], outDtype: dtype };
          const whole = new Uint8Array(await rt.read(await method.gpu(rt, inputs, params, ctx)));
          Object.defineProperty(rt, 'limits', { configurable: true, get: () => limited });
          let chunked: Uint8Array;
          try {
            chunked = new Uint8Array(await rt.read(await method.gpu(rt, inputs, params, ctx)));
          } finally {
            delete (rt as { limits?: unknown }).limits;
          }
          expect(Buffer.from(chunked).equals(Buffer.from(whole)), `${method.name} ${dtype}`).toBe(true);
          const want = method.cpu(base.values, models.map((m) => m.values), inputs.weights, params, ctx);
          const election = signElection(method, base.values, models.map((m) => m.values), inputs.weights, params, ctx);
          const ref = election ? election.pick(decodeArray(chunked, dtype, n), want) : want;
          expect(compareOutput(chunked.buffer as ArrayBuffer, ref, dtype).mismatches, `${method.name} ${dtype}`).toEqual([]);
        }
      }
    });
  }, 180_000);
});

/**
 * The rescale choices of the sparsifying methods (mergekit's `rescale: true` = restore each Δ's
 * L1 norm; `false` = none; the studio's DARE default 1/density) against the float64 reference.
 */
describe.each(METHODS.filter((m) => m.params.some((p) => p.name === 'rescale')).map((m) => [m.name, m] as const))('%s: every rescale choice on the GPU vs float64', (_name, method) => {
  const choices = method.params.find((p) => p.name === 'rescale')!.choices!.map((c) => c.value);
  for (const rescale of choices) {
    it(`rescale ${rescale}, F32 and BF16, n = 1, 1000, 70001`, async () => {
      for (const n of [1, 1000, 70_001]) {
        for (const dtype of ['F32', 'BF16'] as const) {
          await withGpu(async (rt) => {
            const base = uploadTensor(rt, 'base', randomValues(n), dtype);
            const models = fineTunes(base.values, 3, 0.2).map((v, i) => uploadTensor(rt, `m${i}`, v, dtype));
            const weights = [0.7, -0.4, 1.3];
            const ctx = { tensorIndex: 2, tensor: `t${n}` };
            const params: MergeParams = { ...(PARAMS[method.name] ?? {}), rescale };
            const out = await method.gpu(rt, { n, base: base.gpu, models: models.map((m) => m.gpu), weights, outDtype: dtype }, params, ctx);
            const bytes = await rt.read(out);
            const want = method.cpu(base.values, models.map((m) => m.values), weights, params, ctx);
            const election = signElection(method, base.values, models.map((m) => m.values), weights, params, ctx);
            const ref = election ? election.pick(decodeArray(bytes, dtype, n), want) : want;
            expect(compareOutput(bytes, ref, dtype).mismatches, `n = ${n} ${dtype}`).toEqual([]);
          });
        }
      }
    });
  }
});
