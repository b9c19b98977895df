import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { bindAdapter, bytesSource, decodeToF32, encodeFromF32, openAdapter, openCheckpoint, readSafetensorsHeader, writeSafetensors } from '../engine/index.ts';
import { folderFileSet } from '../node/files.ts';
import { testRuntime } from '../testing/gpu.ts';
import { runEval } from './eval.ts';
import { runGenerate } from './generate.ts';
import { runInspect } from './inspect.ts';
import { runMerge } from './merge.ts';
import type { CommandEnv } from './session.ts';

/**
 * LoRA adapter folders on the command line: `--model ADAPTER_DIR[:W]` beside full fine-tunes in
 * dem merge (against the PyTorch float64 merge of scripts/make_lora_fixtures.py), mergekit's
 * `BASE+ADAPTER` model syntax written to mergekit_config.yml and read back, and dem eval /
 * generate on an adapter giving what they give on the merged folder. (dem ppl: src/cli/ppl.test.ts
 * holds two adapter merges to the PyTorch reference.)
 */
const FIX = resolve('e2e/fixtures');
const GPT2 = join(FIX, 'tiny-gpt2');
const LORA = join(FIX, 'tiny-gpt2-lora');
const tmp = mkdtempSync(join(tmpdir(), 'dem-lora-test-'));
let count = 0;
const outDir = (): string => join(tmp, `out${count++}`);

function env(out: string[] = []): CommandEnv {
  return { runtime: () => testRuntime(), out: (s) => void out.push(s), signal: new AbortController().signal };
}

async function tensors(path: string): Promise<Map<string, { dtype: string; bytes: Uint8Array }>> {
  const bytes = new Uint8Array(readFileSync(path));
  const header = await readSafetensorsHeader(bytesSource(bytes, path));
  return new Map(header.tensors.map((t) => [t.name, { dtype: t.dtype, bytes: bytes.slice(header.dataStart + t.begin, header.dataStart + t.end) }]));
}

describe('LoRA adapters in the CLI', () => {
  it('dem merge --model ADAPTER:W beside a full fine-tune: within 1e-6 of the PyTorch float64 merge; mergekit YAML BASE+ADAPTER round trip', async () => {
    const dir = outDir();
    expect(await runMerge(['--quiet', '--base', GPT2, '--model', `${FIX}/tiny-gpt2-ft-a:0.7`, '--model', `${LORA}:0.5`, '--dtype', 'f32', '--out', dir], env())).toBe(0);
    const got = await tensors(join(dir, 'model.safetensors'));
    const ref = await tensors(join(FIX, 'reference', 'lora', 'merge-gpt2-ft-a0.7-lora0.5.safetensors'));
    let worst = 0;
    for (const [name, want] of ref) {
      if (name.endsWith('attn.bias') || name.endsWith('masked_bias')) continue;
      const w = new Float64Array(want.bytes.buffer);
      const g = decodeToF32(got.get(name)!.bytes, 'F32');
      let scale = 0;
      let err = 0;
      for (let i = 0; i < w.length; i++) {
        scale = Math.max(scale, Math.abs(w[i]!));
        err = Math.max(err, Math.abs(g[i]! - w[i]!));
        expect(Math.abs(g[i]! - w[i]!)).toBeLessThanOrEqual(1e-6 + 1e-6 * Math.abs(w[i]!));
      }
      worst = Math.max(worst, err / scale);
    }
    expect(worst).toBeLessThanOrEqual(1e-6);
    console.log(`dem merge ft-a:0.7 + lora:0.5 vs PyTorch float64: worst max|err|/max|ref| ${worst.toExponential(2)}`);

    const yaml = readFileSync(join(dir, 'mergekit_config.yml'), 'utf8');
    // Each part of BASE+ADAPTER relative to the YAML's own folder, as every exported path.
    expect(yaml).toContain(`model: ${relative(dir, GPT2)}+${relative(dir, LORA)}`);
    const again = outDir();
    expect(await runMerge(['--quiet', '--config', join(dir, 'mergekit_config.yml'), '--out', again], env())).toBe(0);
    expect(readFileSync(join(again, 'model.safetensors')).equals(readFileSync(join(dir, 'model.safetensors')))).toBe(true);
    // Hand-written, as mergekit users write it: relative paths, the adapter over the base.
    const yml = join(tmp, 'hand.yml');
    writeFileSync(
      yml,
      `merge_method: task_arithmetic\nbase_model: e2e/fixtures/tiny-gpt2\ndtype: float32\nmodels:\n  - model: e2e/fixtures/tiny-gpt2-ft-a\n    parameters:\n      weight: 0.7\n  - model: e2e/fixtures/tiny-gpt2+e2e/fixtures/tiny-gpt2-lora\n    parameters:\n      weight: 0.5\n`,
    );
    const hand = outDir();
    expect(await runMerge(['--quiet', '--config', yml, '--out', hand], env())).toBe(0);
    expect(readFileSync(join(hand, 'model.safetensors')).equals(readFileSync(join(dir, 'model.safetensors')))).toBe(true);
  });

  it('dem eval and dem generate on BASE+ADAPTER match the merged folder', async () => {
    const dir = outDir();
    expect(await runMerge(['--quiet', '--base', GPT2, '--model', `${LORA}:1`, '--out', dir], env())).toBe(0);
    const task = join(FIX, 'tasks', 'cloze.jsonl');
    const scores = async (args: string[]): Promise<{ tasks: { acc: number; items: { loglik: number[] }[] }[] }> => {
      const out: string[] = [];
      expect(await runEval([...args, '--task', task, '--context', '48', '--json', '--quiet'], env(out))).toBe(0);
      return JSON.parse(out.join('')) as never;
    };
    const merged = await scores(['--model', dir]);
    for (const args of [['--model', `${GPT2}+${LORA}`], ['--base', GPT2, '--model', LORA]]) {
      const adapter = await scores(args);
      expect(adapter.tasks[0]!.acc).toBe(merged.tasks[0]!.acc);
      adapter.tasks[0]!.items.forEach((item, i) => item.loglik.forEach((l, j) => expect(Math.abs(l - merged.tasks[0]!.items[i]!.loglik[j]!)).toBeLessThanOrEqual(1e-4 * Math.abs(l))));
    }
    const generate = async (args: string[]): Promise<string> => {
      const out: string[] = [];
      expect(await runGenerate([...args, '--prompt', 'The lighthouse keeper', '--max-tokens', '12', '--json', '--quiet'], env(out))).toBe(0);
      return (JSON.parse(out.join('')) as { text: string }).text;
    };
    expect(await generate(['--model', `${GPT2}+${LORA}`])).toBe(await generate(['--model', dir]));
    // Without a base it is refused with what to write instead.
    await expect(runEval(['--model', LORA, '--task', task, '--quiet'], env())).rejects.toThrow(/is a LoRA adapter: give the model it applies to/);
  });
});

describe('dem merge --as-adapter', () => {
  it('a task_arithmetic merge of two adapters (different ranks and targets) written as a PEFT adapter reloads equal to the dense merge', async () => {
    // A second Llama adapter: q_proj only, r 2, lora_alpha 5, F32 factors.
    const second = join(tmp, 'tiny-llama-lora-b');
    mkdirSync(second);
    writeFileSync(join(second, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 5, target_modules: ['q_proj'], use_rslora: false, fan_in_fan_out: false }));
    const entries = [0, 1].flatMap((l) => [
      { name: `base_model.model.model.layers.${l}.self_attn.q_proj.lora_A.weight`, dtype: 'F32' as const, shape: [2, 32], data: encodeFromF32(Float32Array.from({ length: 64 }, () => Math.random() - 0.5), 'F32') },
      { name: `base_model.model.model.layers.${l}.self_attn.q_proj.lora_B.weight`, dtype: 'F32' as const, shape: [32, 2], data: encodeFromF32(Float32Array.from({ length: 64 }, () => (Math.random() - 0.5) * 0.1), 'F32') },
    ]);
    writeFileSync(join(second, 'adapter_model.safetensors'), writeSafetensors(entries));
    const LLAMA = join(FIX, 'tiny-llama');
    const args = ['--base', LLAMA, '--model', `${FIX}/tiny-llama-lora:0.6`, '--model', `${second}:-0.3`, '--lambda', '1.5'];
    const adapterDir = outDir();
    expect(await runMerge(['--quiet', ...args, '--as-adapter', '--out', adapterDir], env())).toBe(0);
    const denseDir = outDir();
    expect(await runMerge(['--quiet', ...args, '--dtype', 'f32', '--out', denseDir], env())).toBe(0);
    const config = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 4, use_rslora: false, rank_pattern: { 'model\\.layers\\.0\\.self_attn\\.q_proj': 6, 'model\\.layers\\.1\\.self_attn\\.q_proj': 6 } });
    const base = await openCheckpoint(await folderFileSet(LLAMA), 'tiny-llama');
    const reloaded = bindAdapter(await openAdapter(await folderFileSet(adapterDir), 'merged-adapter'), base);
    const dense = await tensors(join(denseDir, 'model.safetensors'));
    let worst = 0;
    for (const t of reloaded.tensors.values()) {
      if (t.kind !== 'param') continue;
      const got = decodeToF32(await reloaded.read(t.name), t.dtype);
      const want = decodeToF32(dense.get(t.storedName)!.bytes, 'F32');
      let scale = 0;
      let err = 0;
      for (let i = 0; i < want.length; i++) {
        scale = Math.max(scale, Math.abs(want[i]!));
        err = Math.max(err, Math.abs(got[i]! - want[i]!));
        expect(Math.abs(got[i]! - want[i]!), t.name).toBeLessThanOrEqual(1e-6 + 1e-6 * Math.abs(want[i]!));
      }
      worst = Math.max(worst, err / scale);
    }
    expect(worst).toBeLessThanOrEqual(1e-6);
    console.log(`--as-adapter reloaded vs dense merge: worst max|err|/max|ref| ${worst.toExponential(2)}`);
    // A full fine-tune among the members, or modules_to_save, has no factored form.
    await expect(runMerge(['--quiet', '--base', LLAMA, '--model', `${FIX}/tiny-llama-ft-a:0.5`, '--model', `${FIX}/tiny-llama-lora:1`, '--as-adapter', '--out', outDir()], env())).rejects.toThrow(/is a full checkpoint/);
    await expect(runMerge(['--quiet', '--base', GPT2, '--model', `${LORA}:1`, '--as-adapter', '--out', outDir()], env())).rejects.toThrow(/replaces whole tensors \(modules_to_save/);
  });
});

describe('dem inspect ADAPTER_DIR', () => {
  /** dem inspect ARGS: its exit code and what it printed. */
  async function inspect(...args: string[]): Promise<{ code: number; out: string }> {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
    try {
      return { code: await runInspect(args), out: lines.join('\n') };
    } finally {
      spy.mockRestore();
    }
  }
  /** Counts straight from the file: the header's JSON and its data offsets. */
  function headerCounts(path: string): { tensors: number; elements: number; bytes: number } {
    const b = readFileSync(path);
    const header = JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString('utf8')) as Record<string, { shape: number[]; data_offsets: [number, number] }>;
    const entries = Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => v);
    return { tensors: entries.length, elements: entries.reduce((s, t) => s + t.shape.reduce((x, y) => x * y, 1), 0), bytes: entries.reduce((s, t) => s + t.data_offsets[1] - t.data_offsets[0], 0) };
  }

  it('describes a PEFT adapter (type, r, alpha, rsLoRA, targets, layers, counts, bytes, the base it names) instead of asking for config.json', async () => {
    const gpt2 = headerCounts(join(LORA, 'adapter_model.safetensors'));
    expect(gpt2.tensors).toBe(10);
    const text = await inspect(LORA);
    expect(text.code).toBe(0);
    const lines = text.out.split('\n');
    expect(lines.slice(0, 5)).toEqual([
      "tiny-gpt2-lora: LoRA adapter (PEFT) over 'tiny-gpt2' (read over a base: dem merge --model BASE+ADAPTER)",
      // rank_pattern gives layer 1's c_attn r 2 (s = 8/2); alpha_pattern gives mlp.c_proj alpha 3 (s = 3/4).
      'r 4, lora_alpha 8, rsLoRA no: ranks 2, 4, scale s 0.75, 2, 4',
      'target_modules: c_attn, mlp.c_proj; 4 adapted matrices in layers 0, 1',
      'modules_to_save: ln_f; replaced whole: transformer.ln_f.bias, transformer.ln_f.weight',
      `tensors ${gpt2.tensors}, parameters ${gpt2.elements.toLocaleString('en-US')}, 8.3 KiB; dtypes: F32 ${gpt2.elements.toLocaleString('en-US')}`,
    ]);
    expect(gpt2.bytes).toBe(gpt2.elements * 4);
    expect(lines.filter((l) => l.startsWith('base_model.model.'))).toHaveLength(gpt2.tensors);

    const llama = headerCounts(join(FIX, 'tiny-llama-lora', 'adapter_model.safetensors'));
    const json = await inspect(join(FIX, 'tiny-llama-lora'), '--json');
    expect(json.code).toBe(0);
    const s = JSON.parse(json.out) as Record<string, unknown>;
    expect(s).toMatchObject({
      name: 'tiny-llama-lora',
      peftType: 'LORA',
      base: 'tiny-llama',
      r: 4,
      alpha: 8,
      rslora: true,
      ranks: [4],
      scales: [8 / 2],
      targetModules: ['q_proj', 'v_proj'],
      layers: [0, 1],
      layersToTransform: null,
      tensorCount: llama.tensors,
      parameterCount: llama.elements,
      bytes: llama.bytes,
      dtypes: { BF16: llama.elements },
    });
    expect(s.modules).toEqual([0, 1].flatMap((i) => [`model.layers.${i}.self_attn.q_proj`, `model.layers.${i}.self_attn.v_proj`]));
  });

  it('an adapter on layer 1 only (layers_to_transform) says so', async () => {
    const dir = join(tmp, 'layer1-lora');
    mkdirSync(dir);
    const src = join(FIX, 'tiny-llama-lora');
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(src, 'adapter_config.json'), 'utf8')), layers_to_transform: [1], layers_pattern: 'layers' }));
    const all = await tensors(join(src, 'adapter_model.safetensors'));
    const shapes = new Map((await readSafetensorsHeader(bytesSource(new Uint8Array(readFileSync(join(src, 'adapter_model.safetensors'))), 'w'))).tensors.map((t) => [t.name, t.shape]));
    const kept = [...all].filter(([k]) => k.includes('.layers.1.'));
    writeFileSync(join(dir, 'adapter_model.safetensors'), writeSafetensors(kept.map(([name, t]) => ({ name, dtype: t.dtype as 'BF16', shape: shapes.get(name)!, data: t.bytes }))));
    const r = await inspect(dir);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[2]).toBe('target_modules: q_proj, v_proj; 2 adapted matrices in layers 1 (layers_to_transform 1)');
  });
});
