import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { folderFileSet } from '../../node/files.ts';
import { testRuntime, withGpu } from '../../testing/gpu.ts';
import { GpuOutOfMemoryError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint.ts';
import { GpuModel } from '../model/forward.ts';
import { streamMerge } from './execute.ts';
import { parseRecipe, type MergeRecipe } from './recipe.ts';
import { rowChunkElements } from '../kernels/mergeRows.ts';
import { decodeArray } from '../kernels/decode.ref.ts';
import { residentBytes, ResidentMerge } from './resident.ts';

/**
 * The resident (interactive) merge against the streaming one: the same recipe gives the same
 * bytes for every tensor, bit for bit, for every method, weights and output dtypes; a second
 * merge allocates only the kernels' small parameter buffers and uploads no tensor data; the
 * compressed residencies stay within their quantisation error of the exact merge.
 */
const FIX = resolve('e2e/fixtures');
const open = async (name: string): Promise<Checkpoint> => openCheckpoint(await folderFileSet(resolve(FIX, name)), name);

function recipe(method: string, base: Checkpoint, models: Checkpoint[], weights: unknown[], parameters: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): MergeRecipe {
  return parseRecipe({ version: 1, method, base: base.name, models: models.map((m, i) => ({ model: m.name, parameters: weights[i] === undefined ? {} : { weight: weights[i] } })), parameters, ...extra });
}

/** Every tensor the resident merge returns, read back, against streamMerge's bytes. */
async function expectSameAsStreaming(rt: GpuRuntime, resident: ResidentMerge, r: MergeRecipe): Promise<number> {
  const out = await resident.merge(r);
  let checked = 0;
  for await (const t of streamMerge(rt, { recipe: r, base: resident.base, models: resident.models }, { output: 'bytes' })) {
    const got = out.get(t.ref.name)!;
    expect(got.dtype, t.ref.name).toBe(t.dtype);
    expect(got.shape).toEqual(t.ref.shape);
    const bytes = new Uint8Array(await rt.read(got.buffer, 0, t.byteLength));
    expect(Buffer.from(bytes).equals(Buffer.from(t.data!)), `${r.method} ${t.ref.name}`).toBe(true);
    checked++;
  }
  expect(checked).toBe(out.size);
  return checked;
}

/** Counts buffers and bytes created, and bytes written, while `body` runs. */
async function counting<T>(rt: GpuRuntime, body: () => Promise<T>): Promise<{ result: T; buffers: number; bytes: number; largest: number; written: number }> {
  const create = rt.createBuffer;
  const write = rt.write;
  const c = { buffers: 0, bytes: 0, largest: 0, written: 0 };
  rt.createBuffer = (label, size, usage) => {
    c.buffers++;
    c.bytes += size;
    c.largest = Math.max(c.largest, size);
    return create.call(rt, label, size, usage);
  };
  rt.write = (buffer, data, offset) => {
    c.written += data.byteLength;
    write.call(rt, buffer, data, offset);
  };
  try {
    return { result: await body(), ...c };
  } finally {
    rt.createBuffer = create;
    rt.write = write;
  }
}

describe('ResidentMerge', () => {
  it('equals streamMerge bit for bit: GPT-2 F32, task_arithmetic/ties/dare/breadcrumbs/linear, gradients, F16 output', async () => {
    await withGpu(async (rt) => {
      const base = await open('tiny-gpt2');
      const models = await Promise.all(['a', 'b', 'c'].map((s) => open(`tiny-gpt2-ft-${s}`)));
      const resident = await ResidentMerge.create(rt, base, models);
      try {
        const recipes = [
          recipe('task_arithmetic', base, models, [0.5, -0.3, 1.2], { lambda: 0.8 }),
          recipe('task_arithmetic', base, models, [[0.2, 1.0], [{ filter: 'attn', value: 0.7 }, { value: 0.1 }], 0.4]),
          recipe('ties', base, models, [0.6, 0.9, 0.3], { density: 0.4 }),
          recipe('dare_linear', base, models, [0.5, 0.8, 0.4], { density: 0.6, seed: 42 }),
          recipe('dare_ties', base, models, [0.5, 0.8, 0.4], { density: 0.7, seed: 3 }),
          recipe('breadcrumbs', base, models, [0.5, 0.8, 0.4], { density: 0.8, gamma: 0.05 }),
          recipe('breadcrumbs_ties', base, models, [0.5, 0.8, 0.4], { density: 0.7, gamma: 0.05, rescale: 'l1' }),
          recipe('dare_ties', base, models, [0.5, 0.8, 0.4], { density: 0.6, seed: 5, rescale: 'l1' }),
          recipe('model_stock', base, models, [undefined, undefined, undefined]),
          recipe('linear', base, models, [1, 2, 0.5]),
          recipe('task_arithmetic', base, models, [0.3, 0.3, 0.3], {}, { dtype: 'float16' }),
          recipe('task_arithmetic', base, models, [0.31, 0.2, 0.1], {}),
        ];
        for (const r of recipes) expect(await expectSameAsStreaming(rt, resident, r)).toBe(base.tensors.size);
      } finally {
        resident.destroy();
      }
    });
  });

  it('equals streamMerge bit for bit: Llama BF16 (ties, task_arithmetic → F32) and slerp', async () => {
    await withGpu(async (rt) => {
      const base = await open('tiny-llama');
      const models = await Promise.all(['a', 'b'].map((s) => open(`tiny-llama-ft-${s}`)));
      const resident = await ResidentMerge.create(rt, base, models);
      try {
        await expectSameAsStreaming(rt, resident, recipe('ties', base, models, [0.61, 0.93], { density: 0.5 }));
        await expectSameAsStreaming(rt, resident, recipe('task_arithmetic', base, models, [[0.2, 1.0], -0.4], {}, { dtype: 'float32' }));
        await expectSameAsStreaming(rt, resident, recipe('task_arithmetic', base, models, [0.7, 0.4], { normalize: true, lambda: 1.3 }));
      } finally {
        resident.destroy();
      }
      const one = await ResidentMerge.create(rt, base, [models[1]!]);
      try {
        await expectSameAsStreaming(rt, one, recipe('slerp', base, [models[1]!], [undefined], { t: 0.6 }));
      } finally {
        one.destroy();
      }
    });
  });

  it('a second merge uploads nothing: task_arithmetic reuses its prepared parameter buffers, outputs reused in place', async () => {
    await withGpu(async (rt) => {
      const base = await open('tiny-gpt2');
      const models = await Promise.all(['a', 'b', 'c'].map((s) => open(`tiny-gpt2-ft-${s}`)));
      const created = await counting(rt, () => ResidentMerge.create(rt, base, models));
      const resident = created.result;
      try {
        const first = await counting(rt, () => resident.merge({ method: 'task_arithmetic', weights: [0.5, 0.2, 0.1] }));
        const second = await counting(rt, () => resident.merge({ method: 'task_arithmetic', weights: [0.1, -0.4, 0.9] }));
        const third = await counting(rt, () => resident.merge({ method: 'ties', weights: [0.1, 0.4, 0.9], params: { density: 0.5 } }));
        const merged = resident.tensors.filter((t) => t.merged).length;
        console.log(
          `resident gpt2 (${merged} merged tensors, holds ${resident.memory.bytes} bytes): create ${created.buffers} buffers / ${created.bytes} bytes / ${created.written} bytes written; ` +
            `first merge ${first.buffers} / ${first.bytes} / ${first.written}; second ${second.buffers} / ${second.bytes} / ${second.written} (largest ${second.largest}); ties ${third.buffers} / ${third.bytes} (largest ${third.largest})`,
        );
        // The first task_arithmetic merge makes the outputs and prepares, per tensor, a 16-byte uniform and an (N)
        // coefficient buffer (nothing tensor-sized); the second allocates nothing and writes
        // only those.
        expect(first.buffers).toBe(3 * merged); // and the outputs
        expect(first.bytes).toBe(resident.memory.outputs + merged * (16 + 3 * 4));
        expect(second.buffers).toBe(0);
        expect(second.written).toBe(merged * (16 + 3 * 4));
        // ties also allocates and clears its selection scratch (fixed size, not per element).
        const largest = Math.max(...resident.tensors.filter((t) => t.merged).map((t) => t.byteLength));
        expect(third.largest).toBeLessThan(largest / 4);
        expect(third.written).toBeLessThan(resident.memory.base / 2);
        // The output buffers are the same objects: a GpuModel built on the first map sees the second merge.
        for (const [name, t] of first.result) expect(second.result.get(name)!.buffer, name).toBe(t.buffer);
        expect(resident.memory.bytes).toBe(residentBytes(base, models, rt.limits).total - residentBytes(base, models, rt.limits).transient);
      } finally {
        resident.destroy();
      }
    });
  });

  it('its output is GpuModel weights (canonical names), and the model follows later merges', async () => {
    await withGpu(async (rt) => {
      const base = await open('tiny-llama');
      const models = await Promise.all(['a', 'b'].map((s) => open(`tiny-llama-ft-${s}`)));
      const resident = await ResidentMerge.create(rt, base, models);
      try {
        const weights = await resident.merge({ method: 'task_arithmetic', weights: [0, 0] });
        expect([...weights.keys()]).toContain('model.layers.0.self_attn.q_proj.weight');
        const model = await GpuModel.create(rt, base.spec, weights);
        const ids = [1, 5, 9, 40, 2, 7];
        const atBase = (await model.nll(ids)).nllSum;
        await resident.merge({ method: 'task_arithmetic', weights: [1, 0] });
        const atA = (await model.nll(ids)).nllSum;
        await resident.merge({ method: 'task_arithmetic', weights: [0, 0] });
        expect((await model.nll(ids)).nllSum).toBe(atBase);
        expect(atA).not.toBe(atBase);
      } finally {
        resident.destroy();
      }
    });
  });

  it('refuses, before uploading anything, when the resident data would not fit the budget', async () => {
    const base = await open('tiny-gpt2');
    const models = await Promise.all(['a', 'b', 'c'].map((s) => open(`tiny-gpt2-ft-${s}`)));
    const probe = await testRuntime();
    const need = residentBytes(base, models, probe.limits);
    const rt = await testRuntime({ memoryBudget: Math.floor(need.total * 0.9) });
    try {
      const error = await ResidentMerge.create(rt, base, models).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(GpuOutOfMemoryError);
      expect((error as Error).message).toMatch(/needs \d+ bytes .* merge tensor by tensor instead \(streamMerge\)/);
      expect(rt.memory.peak).toBe(0);
    } finally {
      rt.destroy();
    }
    const fits = await testRuntime({ memoryBudget: need.total });
    try {
      const resident = await ResidentMerge.create(fits, base, models);
      await resident.merge({ method: 'task_arithmetic', weights: [0.5, 0.5, 0.5] });
      expect(fits.memory.peak).toBeLessThanOrEqual(need.total + 64 * base.tensors.size);
      resident.destroy();
      expect(fits.memory.live).toBe(0);
    } finally {
      fits.destroy();
    }
  });

  it('keeps rows larger than the device\'s largest binding in chunks: every method still equals streamMerge bit for bit', async () => {
    const base = await open('tiny-gpt2');
    const models = await Promise.all(['a', 'b', 'c'].map((s) => open(`tiny-gpt2-ft-${s}`)));
    const rt = await testRuntime();
    const real = rt.limits;
    // wte (300 × 32 = 9600 elements) has 115,200 bytes of F32 rows for 3 models: chunks of 3 × 1024 elements.
    const limits = new Proxy(real, { get: (target, key) => (key === 'maxStorageBufferBindingSize' ? 40_000 : (Reflect.get(target, key) as unknown)) });
    expect(rowChunkElements(limits, ['F32', 'F32', 'F32'], 9600)).toBe(3072);
    expect(rowChunkElements(limits, ['F32', 'F32', 'F32'], 2048)).toBe(2048);
    const recipes = [
      recipe('task_arithmetic', base, models, [0.5, -0.3, 1.2], { lambda: 0.8 }),
      recipe('task_arithmetic', base, models, [[0.2, 1.0], [{ filter: 'attn', value: 0.7 }, { value: 0.1 }], 0.4]),
      recipe('task_arithmetic', base, models, [0.3, 0.3, 0.3], { normalize: true }, { dtype: 'float16' }),
      recipe('task_arithmetic', base, models, [0.31, 0.2, 0.1], {}, { dtype: 'bfloat16' }),
      recipe('linear', base, models, [1, 2, 0.5]),
      recipe('ties', base, models, [0.6, 0.9, 0.3], { density: 0.4 }),
      recipe('dare_linear', base, models, [0.5, 0.8, 0.4], { density: 0.6, seed: 42, rescale: 'l1' }),
      recipe('breadcrumbs', base, models, [0.5, 0.8, 0.4], { density: 0.8, gamma: 0.05 }),
      recipe('model_stock', base, models, [undefined, undefined, undefined]),
    ];
    // The references: streamMerge under the device's real limits, every tensor's rows in one piece.
    const want: Map<string, Uint8Array>[] = [];
    for (const r of recipes) {
      const bytes = new Map<string, Uint8Array>();
      for await (const t of streamMerge(rt, { recipe: r, base, models }, { output: 'bytes' })) bytes.set(t.ref.name, t.data!);
      want.push(bytes);
    }
    Object.defineProperty(rt, 'limits', { configurable: true, get: () => limits });
    const resident = await ResidentMerge.create(rt, base, models);
    try {
      expect(resident.memory.rows).toBe(residentBytes(base, models, limits).rows);
      for (const [k, r] of recipes.entries()) {
        const out = await resident.merge(r);
        for (const [name, bytes] of want[k]!) {
          const got = new Uint8Array(await rt.read(out.get(name)!.buffer, 0, bytes.byteLength));
          expect(Buffer.from(got).equals(Buffer.from(bytes)), `${r.method} ${name}`).toBe(true);
        }
        // And the streaming path, which now chunks wte too.
        expect(await expectSameAsStreaming(rt, resident, r)).toBe(base.tensors.size);
      }
    } finally {
      resident.destroy();
      delete (rt as { limits?: unknown }).limits;
    }
  });

  it('compressed residency (int8 blocks of 64, BF16 Δ) stays within its quantisation error of the exact merge, and is labelled', async () => {
    await withGpu(async (rt) => {
      const base = await open('tiny-gpt2');
      const models = await Promise.all(['a', 'b', 'c'].map((s) => open(`tiny-gpt2-ft-${s}`)));
      const weights = [0.7, -0.4, 1.1];
      const exact = await ResidentMerge.create(rt, base, models);
      const exactOut = await exact.merge({ method: 'task_arithmetic', weights });
      expect(exact.approximate).toBe(false);
      for (const residency of ['int8', 'bf16'] as const) {
        const approx = await ResidentMerge.create(rt, base, models, { residency });
        try {
          expect(approx.approximate).toBe(true);
          expect(approx.memory.rows).toBe(residentBytes(base, models, rt.limits, residency).rows);
          expect(approx.memory.rows).toBeLessThan(exact.memory.rows / (residency === 'int8' ? 3.5 : 1.9));
          const out = await approx.merge({ method: 'task_arithmetic', weights });
          let worst = 0;
          for (const t of approx.tensors.filter((p) => p.merged)) {
            const n = t.ref.shape.reduce((a, b) => a * b, 1);
            const got = decodeArray(await rt.read(out.get(t.ref.name)!.buffer), 'F32', n);
            const want = decodeArray(await rt.read(exactOut.get(t.ref.name)!.buffer), 'F32', n);
            const b = decodeArray(await base.read(t.ref.name), 'F32', n);
            const ds = await Promise.all(models.map(async (m) => decodeArray(await m.read(t.ref.name), 'F32', n).map((x, i) => Math.fround(x - b[i]!))));
            for (let i = 0; i < n; i++) {
              // Per element: Σ |ω_r| × (half a step of row r's block (int8), or half a BF16 ulp of Δ_r) + f32 rounding.
              let bound = 1e-6 * Math.abs(want[i]!) + 1e-7;
              ds.forEach((d, r) => {
                if (residency === 'int8') {
                  const block = Math.floor(i / 64) * 64;
                  let m = 0;
                  for (let j = block; j < Math.min(n, block + 64); j++) m = Math.max(m, Math.abs(d[j]!));
                  bound += Math.abs(weights[r]!) * (m / 127) * (0.5 + 1e-5);
                } else {
                  bound += Math.abs(weights[r]!) * Math.abs(d[i]!) * 2 ** -8;
                }
              });
              const err = Math.abs(got[i]! - want[i]!);
              worst = Math.max(worst, err / bound);
              if (err > bound) expect.fail(`${residency} ${t.ref.name}[${i}]: ${got[i]} vs exact ${want[i]} (bound ${bound})`);
            }
          }
          console.log(`${residency} residency: worst error ${worst.toFixed(3)} of its bound; rows ${approx.memory.rows} bytes vs exact ${exact.memory.rows}`);
        } finally {
          approx.destroy();
        }
      }
      exact.destroy();
    });
  });

  it('keeps a Qwen2.5-0.5B-sized embedding with 4 BF16 fine-tunes in one piece under a 2 GiB binding (F32 models or Δ would need chunks)', () => {
    const limits = { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31 - 4, minStorageBufferOffsetAlignment: 256 };
    const n = 151_936 * 896; // 1,089,077,248 bytes of BF16 rows for 4 models; 2,178,154,496 in F32
    expect(rowChunkElements(limits, ['BF16', 'BF16', 'BF16', 'BF16'], n)).toBe(n);
    expect(rowChunkElements(limits, ['F32', 'F32', 'F32', 'F32'], n)).toBe(131_071 * 1024);
    expect(rowChunkElements(limits, ['Q8', 'Q8', 'Q8', 'Q8'], n)).toBe(n);
  });
});
