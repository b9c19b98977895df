import { afterAll, describe, expect, it } from 'vitest';
import { withGpu } from '../../../testing/gpu.ts';
import { FLOAT_DTYPES, type FloatDType } from '../../io/dtypes.ts';
import { bitsFromF32, elementBits, f16BitsToNumber, bf16BitsToNumber } from '../../kernels/decode.ref.ts';
import { combineTaskArithmetic } from '../../kernels/merge.ts';
import { sparseCombine } from '../../kernels/mergeSparse.ts';
import { dareKeepThreshold, elementHash, generalizedTaskArithmetic, rowKey, slerp as slerpRef, slerpFactors, taskArithmetic as taRef } from '../reference.ts';
import { getMethod } from '../registry.ts';
import { compareOutput, fineTunes, modelRows, randomValues, uploadTensor, type TestTensor } from '../testkit.ts';

/** Merge invariants checked bit for bit where the kernels promise it. */
const notes: string[] = [];
afterAll(() => console.log(notes.join('\n')));

const ctx = { tensorIndex: 9 };
const n = 4099;

function sameBits(a: Uint32Array, b: Uint32Array, limit = 8): string[] {
  const out: string[] = [];
  for (let i = 0; i < a.length && out.length < limit; i++) if (a[i] !== b[i]) out.push(`[${i}] 0x${a[i]!.toString(16)} vs 0x${b[i]!.toString(16)}`);
  return out;
}

/** The smallest positive subnormal of a dtype, a value that survives only if nothing flushes it. */
const tiny: Record<FloatDType, number> = { F32: 2 ** -149, F16: f16BitsToNumber(1), BF16: bf16BitsToNumber(1) };

function baseWithEdges(dtype: FloatDType): Float64Array {
  const v = randomValues(n);
  v[0] = -0;
  v[1] = tiny[dtype];
  v[2] = -tiny[dtype];
  return v;
}

describe('ω = 0 returns the base bit for bit (in the base dtype, -0 and subnormals included)', () => {
  for (const name of ['task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'breadcrumbs', 'breadcrumbs_ties']) {
    it(name, async () => {
      await withGpu(async (rt) => {
        for (const dtype of FLOAT_DTYPES) {
          const base = uploadTensor(rt, 'base', baseWithEdges(dtype), dtype);
          const models = fineTunes(base.values, 3).map((v, i) => uploadTensor(rt, `m${i}`, v, dtype));
          const out = await getMethod(name).gpu(rt, { n, base: base.gpu, models: models.map((m) => m.gpu), weights: [0, 0, 0], outDtype: dtype }, {}, ctx);
          const want = elementBits(await rt.read(base.gpu.buffer), dtype, n);
          expect(sameBits(elementBits(await rt.read(out), dtype, n), want), dtype).toEqual([]);
        }
      });
    });
  }
});

/**
 * ω = e_i, λ = 1: out = fl(θ + fl(θ_i − θ)). Exact whenever the f32 subtraction is exact (always
 * for fine-tunes within a factor 2 of the base, Sterbenz; for F16/BF16 whenever the exponents
 * differ by at most 12/15); otherwise |out − θ_i| <= 2^-23 (|θ| + |θ_i|) before the final
 * rounding to the output dtype. Both halves are asserted; the counts are printed.
 */
describe('ω = e_i gives fine-tune i (task arithmetic)', () => {
  for (const far of [false, true]) {
    it(`${far ? 'independent random' : 'near-base'} fine-tunes, every dtype, normalize both ways`, async () => {
      await withGpu(async (rt) => {
        for (const dtype of FLOAT_DTYPES) {
          const base = uploadTensor(rt, 'base', randomValues(n), dtype);
          const values = far ? [randomValues(n), randomValues(n), randomValues(n)] : fineTunes(base.values, 3);
          const models = values.map((v, i) => uploadTensor(rt, `m${i}`, v, dtype));
          const rows = modelRows(rt, models, n);
          let exact = 0;
          let inexactSub = 0;
          for (let i = 0; i < 3; i++) {
            for (const normalize of [false, true]) {
              const weights = [0, 0, 0].map((_, j) => (j === i ? 1 : 0));
              const out = combineTaskArithmetic(rt, { base: base.gpu, rows, weights, lambda: 1, normalize, n, outDtype: dtype });
              const bytes = await rt.read(out);
              const got = elementBits(bytes, dtype, n);
              const want = elementBits(await rt.read(models[i]!.gpu.buffer), dtype, n);
              const gotValues = compareValues(bytes, dtype);
              const bad: string[] = [];
              for (let e = 0; e < n; e++) {
                const t = base.values[e]!;
                const x = models[i]!.values[e]!;
                const subExact = Math.fround(x - t) === x - t;
                if (got[e] === want[e]) exact++;
                if (!subExact) inexactSub++;
                const bound = 2 ** -23 * (Math.abs(t) + Math.abs(x)) + halfUlp(dtype, x);
                if ((subExact && got[e] !== want[e]) || Math.abs(gotValues[e]! - x) > bound) {
                  if (bad.length < 8) bad.push(`[${e}] base ${t} model ${x} got ${gotValues[e]} (sub exact: ${subExact})`);
                }
              }
              expect(bad, `${dtype} i=${i} normalize=${normalize}`).toEqual([]);
            }
          }
          notes.push(`ω=e_i ${far ? 'far' : 'near'} ${dtype}: ${exact}/${6 * n} bit-exact; f32 subtraction inexact for ${inexactSub}/${6 * n}`);
        }
      });
    });
  }

  it('linear ω = e_i is bit for bit in every dtype (decoded models, no subtraction)', async () => {
    await withGpu(async (rt) => {
      for (const dtype of FLOAT_DTYPES) {
        const models = [0, 1, 2].map((i) => uploadTensor(rt, `m${i}`, randomValues(n), dtype));
        for (let i = 0; i < 3; i++) {
          const weights = [0, 0, 0].map((_, j) => (j === i ? 1 : 0));
          const out = await getMethod('linear').gpu(rt, { n, models: models.map((m) => m.gpu), weights, outDtype: dtype }, {}, ctx);
          const want = elementBits(await rt.read(models[i]!.gpu.buffer), dtype, n);
          expect(sameBits(elementBits(await rt.read(out), dtype, n), want), `${dtype} i=${i}`).toEqual([]);
        }
      }
    });
  });
});

function compareValues(bytes: ArrayBuffer, dtype: FloatDType): Float64Array {
  const bits = elementBits(bytes, dtype, n);
  const dec = dtype === 'F32' ? (b: number) => new Float32Array(Uint32Array.of(b).buffer)[0]! : dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber;
  return Float64Array.from(bits, dec);
}

/** Half an ulp of x in a narrow dtype (the final rounding), 0 for F32. */
function halfUlp(dtype: FloatDType, x: number): number {
  if (dtype === 'F32') return 0;
  const mant = dtype === 'F16' ? 10 : 7;
  const emin = dtype === 'F16' ? -14 : -126;
  const e = Math.max(emin, Math.floor(Math.log2(Math.abs(x) || 2 ** emin)));
  return 2 ** (e - mant - 1);
}

describe('resident rows: any N (here 10), reused across weight changes', () => {
  it('combineTaskArithmetic on packed model rows matches float64 and the method on separate tensors bit for bit', async () => {
    await withGpu(async (rt) => {
      const N = 10;
      const base = uploadTensor(rt, 'base', randomValues(n), 'BF16');
      const models = fineTunes(base.values, N).map((v, i) => uploadTensor(rt, `m${i}`, v, FLOAT_DTYPES[i % 3]!));
      const rows = modelRows(rt, models, n);
      for (let trial = 0; trial < 3; trial++) {
        const weights = Array.from({ length: N }, () => Math.random() * 2 - 0.5);
        const out = combineTaskArithmetic(rt, { base: base.gpu, rows, weights, lambda: 0.7, normalize: false, n, outDtype: 'F32' });
        const ref = taRef(base.values, models.map((m) => m.values), weights, 0.7, false);
        const bytes = await rt.read(out);
        expect(compareOutput(bytes, ref, 'F32').mismatches).toEqual([]);
        const streamed = await getMethod('task_arithmetic').gpu(rt, { n, base: base.gpu, models: models.map((m) => m.gpu), weights, outDtype: 'F32' }, { lambda: 0.7 }, ctx);
        expect(sameBits(new Uint32Array(await rt.read(streamed)), new Uint32Array(bytes))).toEqual([]);
      }
    });
  });
});

describe('TIES with density 1 trims nothing', () => {
  it('equals sign-elected task arithmetic without a mask, bit for bit, and its float64 formula', async () => {
    await withGpu(async (rt) => {
      for (const dtype of FLOAT_DTYPES) {
        const base = uploadTensor(rt, 'base', randomValues(n), dtype);
        const models = fineTunes(base.values, 3).map((v, i) => uploadTensor(rt, `m${i}`, v, dtype));
        const weights = [0.5, 1.5, -0.25];
        const out = await getMethod('ties').gpu(rt, { n, base: base.gpu, models: models.map((m) => m.gpu), weights, outDtype: 'F32' }, { density: 1 }, ctx);
        const rows = modelRows(rt, models, n);
        const untrimmed = sparseCombine(rt, {
          base: base.gpu, chunk: rows.chunks[0]!, mask: 'none', consensus: true, normalize: true, lambda: 1, outDtype: 'F32',
          rows: weights.map((w) => ({ coefficient: w, weight: w })),
        });
        expect(sameBits(new Uint32Array(await rt.read(out)), new Uint32Array(await rt.read(untrimmed))), dtype).toEqual([]);
        const margin = new Float64Array(n);
        const ref = generalizedTaskArithmetic(base.values, models.map((m) => m.values), weights, {
          sparsify: 'none', consensus: true, normalize: true, lambda: 1, densities: [1, 1, 1], seed: 0, tensorIndex: 0, margin,
        });
        expect(compareOutput(await rt.read(out), ref, 'F32', { skip: (i) => margin[i]! < 1e-5 }).mismatches).toEqual([]);
      }
    });
  });
});

describe('DARE is reproducible', () => {
  async function dare(rt: Parameters<Parameters<typeof withGpu>[0]>[0], base: TestTensor, models: TestTensor[], seed: number, tensorIndex: number, name = 'dare_linear'): Promise<Uint32Array> {
    const out = await getMethod(name).gpu(rt, { n, base: base.gpu, models: models.map((m) => m.gpu), weights: models.map(() => 1), outDtype: 'F32' }, { density: 0.3, seed }, { tensorIndex });
    return new Uint32Array(await rt.read(out));
  }

  it('same seed: identical bits; another seed or tensor: a different drop pattern; the pattern is the TS RNG', async () => {
    await withGpu(async (rt) => {
      const base = uploadTensor(rt, 'base', randomValues(n), 'F32');
      const models = fineTunes(base.values, 2).map((v, i) => uploadTensor(rt, `m${i}`, v, 'F32'));
      for (const name of ['dare_linear', 'dare_ties']) {
        const a = await dare(rt, base, models, 1234, 3, name);
        expect(sameBits(await dare(rt, base, models, 1234, 3, name), a), name).toEqual([]);
        const differing = (b: Uint32Array): number => a.filter((x, i) => x !== b[i]).length;
        expect(differing(await dare(rt, base, models, 1235, 3, name))).toBeGreaterThan(n / 4);
        expect(differing(await dare(rt, base, models, 1234, 4, name))).toBeGreaterThan(n / 4);
      }
      // One model, weight 1: out differs from the base exactly where the TS RNG keeps the element.
      const one = await dare(rt, base, [models[0]!], 77, 5);
      const baseBits = new Uint32Array(await rt.read(base.gpu.buffer));
      const key = rowKey(77, 5, 0);
      const thr = dareKeepThreshold(0.3);
      let kept = 0;
      const bad: number[] = [];
      for (let i = 0; i < n; i++) {
        const keep = elementHash(key, i) <= thr;
        kept += keep ? 1 : 0;
        if (keep !== (one[i] !== baseBits[i]) && bad.length < 8) bad.push(i);
      }
      expect(bad).toEqual([]);
      // Binomial(n, 0.3): within 5 standard deviations.
      expect(Math.abs(kept - 0.3 * n)).toBeLessThan(5 * Math.sqrt(n * 0.3 * 0.7));
      notes.push(`DARE density 0.3: kept ${kept}/${n} (${((100 * kept) / n).toFixed(1)}%)`);
    });
  });
});

describe('slerp', () => {
  it('t = 0 and t = 1 give the endpoints bit for bit', async () => {
    await withGpu(async (rt) => {
      for (const dtype of FLOAT_DTYPES) {
        const a = uploadTensor(rt, 'a', randomValues(n), dtype);
        const b = uploadTensor(rt, 'b', randomValues(n), dtype);
        for (const [t, end] of [[0, a], [1, b]] as const) {
          const out = await getMethod('slerp').gpu(rt, { n, base: a.gpu, models: [b.gpu], weights: [1], outDtype: dtype }, { t }, ctx);
          const want = elementBits(await rt.read(end.gpu.buffer), dtype, n);
          expect(sameBits(elementBits(await rt.read(out), dtype, n), want), `${dtype} t=${t}`).toEqual([]);
        }
      }
    });
  });

  it('near-parallel tensors fall back to linear interpolation; tiny norms are not normalised', async () => {
    await withGpu(async (rt) => {
      const av = randomValues(n);
      const a = uploadTensor(rt, 'a', av, 'F32');
      const b = uploadTensor(rt, 'b', av.map((x) => x * 1.01 + 1e-4 * (Math.random() - 0.5)), 'F32');
      let dot = 0;
      let aa = 0;
      let bb = 0;
      a.values.forEach((x, i) => {
        dot += x * b.values[i]!;
        aa += x * x;
        bb += b.values[i]! ** 2;
      });
      expect(slerpFactors(0.4, dot, aa, bb).lerp).toBe(true);
      const out = await getMethod('slerp').gpu(rt, { n, base: a.gpu, models: [b.gpu], weights: [1], outDtype: 'F32' }, { t: 0.4 }, ctx);
      const lerp = a.values.map((x, i) => 0.6 * x + 0.4 * b.values[i]!);
      expect(compareOutput(await rt.read(out), lerp, 'F32').mismatches).toEqual([]);
      // |a| ~ 1e-9 < 1e-8: mergekit leaves it unnormalised; GPU and reference agree on that path too.
      const small = uploadTensor(rt, 's', randomValues(n, 1e-11), 'F32');
      const out2 = await getMethod('slerp').gpu(rt, { n, base: small.gpu, models: [b.gpu], weights: [1], outDtype: 'F32' }, { t: 0.4 }, ctx);
      expect(compareOutput(await rt.read(out2), slerpRef(0.4, small.values, b.values), 'F32').mismatches).toEqual([]);
      expect(bitsFromF32(0)).toBe(0);
    });
  });
});
