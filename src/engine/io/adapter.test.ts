import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, IncompatibleCheckpointError, SafetensorsError } from '../errors.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, bindAdapter, layerIndex, loraDelta, openAdapter, patternValue } from './adapter.ts';
import { openCheckpoint, type Checkpoint } from './checkpoint.ts';
import { decodeToF32, encodeFromF32 } from './dtypes.ts';
import { summarise } from './inspect.ts';
import { readSafetensorsHeader, writeSafetensors } from './safetensors.ts';
import { bytesSource, type ByteSource, type FileSet } from './source.ts';

/**
 * PEFT adapters read over their base: the adapted model's tensors against the float64 values
 * scripts/make_lora_fixtures.py wrote (independent: PyTorch, its own reader), and every kind of
 * adapter the reader must refuse, each named.
 */
const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'e2e', 'fixtures');

function folder(name: string): Map<string, ByteSource> {
  return new Map(readdirSync(join(FIXTURES, name)).map((f) => [f, bytesSource(new Uint8Array(readFileSync(join(FIXTURES, name, f))), f)]));
}

/** A float64 safetensors file (the references) as name -> values. */
export async function readF64(path: string): Promise<Map<string, Float64Array>> {
  const bytes = new Uint8Array(readFileSync(path));
  const header = await readSafetensorsHeader(bytesSource(bytes, path));
  const out = new Map<string, Float64Array>();
  for (const t of header.tensors) {
    expect(t.dtype).toBe('F64');
    out.set(t.name, new Float64Array(bytes.slice(header.dataStart + t.begin, header.dataStart + t.end).buffer));
  }
  return out;
}

async function adapterOver(adapter: string, base: string): Promise<Checkpoint> {
  return bindAdapter(await openAdapter(folder(adapter), adapter), await openCheckpoint(folder(base), base));
}

/** max |got − want| / max(|want|, 1e-3·max|want|) over a tensor. */
function relError(got: ArrayLike<number>, want: Float64Array): number {
  const scale = want.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.max(Math.abs(want[i]!), 1e-3 * scale));
  return worst;
}

describe('PEFT LoRA adapters', () => {
  for (const [adapter, base] of [
    ['tiny-gpt2-lora', 'tiny-gpt2'],
    ['tiny-llama-lora', 'tiny-llama'],
  ] as const) {
    it(`${adapter}: the adapted tensors match the PyTorch float64 reference within 1e-6 relative`, async () => {
      const ckpt = await adapterOver(adapter, base);
      const ref = await readF64(join(FIXTURES, 'reference', 'lora', `${adapter}.safetensors`));
      const baseCkpt = await openCheckpoint(folder(base), base);
      let worst = 0;
      for (const [stored, want] of ref) {
        const t = [...ckpt.tensors.values()].find((r) => r.storedName === stored)!;
        expect(t, stored).toBeDefined();
        const got = decodeToF32(await ckpt.read(t.name), t.dtype);
        worst = Math.max(worst, relError(got, want));
      }
      expect(worst).toBeLessThanOrEqual(1e-6);
      // Untouched tensors are the base's bytes.
      const touched = new Set(ref.keys());
      for (const t of baseCkpt.tensors.values()) {
        if (touched.has(t.storedName)) continue;
        expect(await ckpt.read(t.name)).toEqual(await baseCkpt.read(t.name));
      }
      const s = summarise(ckpt);
      expect(s.adapter?.base).toBe(base);
      expect(s.files).toEqual([ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]);
      console.log(`${adapter}: ${ref.size} tensors, worst relative error ${worst.toExponential(2)}`);
    });
  }

  it('reads scale, rank_pattern, alpha_pattern and rsLoRA as PEFT does', async () => {
    const gpt2 = (await adapterOver('tiny-gpt2-lora', 'tiny-gpt2')).adapter!;
    const byModule = new Map([...gpt2.targets.values()].map((t) => [t.module, t]));
    expect(byModule.get('transformer.h.0.attn.c_attn')).toMatchObject({ rank: 4, alpha: 8, scale: 2, transposed: true, tensor: 'h.0.attn.c_attn.weight' });
    expect(byModule.get('transformer.h.1.attn.c_attn')).toMatchObject({ rank: 2, alpha: 8, scale: 4 });
    expect(byModule.get('transformer.h.1.mlp.c_proj')).toMatchObject({ rank: 4, alpha: 3, scale: 0.75 });
    expect([...gpt2.replaced].sort()).toEqual(['ln_f.bias', 'ln_f.weight']);
    const llama = (await adapterOver('tiny-llama-lora', 'tiny-llama')).adapter!;
    expect(llama.targets.get('model.layers.1.self_attn.v_proj.weight')).toMatchObject({ rank: 4, scale: 8 / 2, transposed: false, out: 16, in: 32 });
    expect(patternValue({ 'layers.1.q': 3 }, 'model.layers.1.q', 9)).toBe(3);
    expect(patternValue({ 'layers.1.q': 3 }, 'model.xlayers.1.q', 9)).toBe(9);
  });

  it('loraDelta: s·B A and its transpose against a direct sum', () => {
    const [r, out, inn, s] = [3, 5, 4, 0.7];
    const a = Float64Array.from({ length: r * inn }, () => Math.random() - 0.5);
    const b = Float64Array.from({ length: out * r }, () => Math.random() - 0.5);
    const d = loraDelta(a, b, r, out, inn, s, false);
    const dt = loraDelta(a, b, r, out, inn, s, true);
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < inn; i++) {
        let x = 0;
        for (let k = 0; k < r; k++) x += b[o * r + k]! * a[k * inn + i]!;
        expect(d[o * inn + i]).toBeCloseTo(s * x, 14);
        expect(dt[i * out + o]).toBe(d[o * inn + i]);
      }
    }
  });

  describe('layers_to_transform and layers_pattern (PEFT: only those layer indices carry the adapter)', () => {
    const llamaConfig = JSON.parse(readFileSync(join(FIXTURES, 'tiny-llama-lora', ADAPTER_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
    const llamaWeights = new Uint8Array(readFileSync(join(FIXTURES, 'tiny-llama-lora', ADAPTER_WEIGHTS_FILE)));
    /** The fixture's factors whose key passes `keep`, bytes unchanged (what PEFT saves for a layer selection). */
    async function subset(keep: (key: string) => boolean): Promise<Uint8Array> {
      const header = await readSafetensorsHeader(bytesSource(llamaWeights, 'w'));
      return writeSafetensors(
        header.tensors.filter((t) => keep(t.name)).map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: llamaWeights.slice(header.dataStart + t.begin, header.dataStart + t.end) })),
      );
    }
    const files = (config: Record<string, unknown>, weights: Uint8Array): FileSet =>
      new Map([
        [ADAPTER_CONFIG_FILE, bytesSource(new TextEncoder().encode(JSON.stringify(config)), ADAPTER_CONFIG_FILE)],
        [ADAPTER_WEIGHTS_FILE, bytesSource(weights, ADAPTER_WEIGHTS_FILE)],
      ]);
    const llamaBase = (): Promise<Checkpoint> => openCheckpoint(folder('tiny-llama'), 'tiny-llama');

    it('finds the layer index as PEFT does: after a layers_pattern name, else after any name', () => {
      expect(layerIndex('model.layers.3.self_attn.q_proj', null)).toBe(3);
      expect(layerIndex('transformer.h.12.attn.c_attn', null)).toBe(12);
      expect(layerIndex('transformer.h.12.attn.c_attn', ['h'])).toBe(12);
      expect(layerIndex('model.layers.3.self_attn.q_proj', ['blocks', 'layers'])).toBe(3);
      expect(layerIndex('model.layers.3.self_attn.q_proj', ['blocks'])).toBeUndefined();
      // PEFT's pattern wants a name before the index: a bare `h.0.` has none.
      expect(layerIndex('h.0.attn.c_attn', null)).toBeUndefined();
    });

    it('layer 1 only: its targets match the PyTorch float64 reference, layer 0 is the base bit for bit', async () => {
      const layer1 = await subset((k) => k.includes('.layers.1.'));
      const ref = await readF64(join(FIXTURES, 'reference', 'lora', 'tiny-llama-lora.safetensors'));
      const base = await llamaBase();
      for (const selection of [{ layers_to_transform: [1], layers_pattern: 'layers' }, { layers_to_transform: 1 }, { layers_to_transform: [1], layers_pattern: ['blocks', 'layers'] }]) {
        const ckpt = bindAdapter(await openAdapter(files({ ...llamaConfig, ...selection }, layer1), 'layer1'), base);
        expect([...ckpt.adapter!.targets.keys()].sort(), JSON.stringify(selection)).toEqual(['model.layers.1.self_attn.q_proj.weight', 'model.layers.1.self_attn.v_proj.weight']);
        let worst = 0;
        for (const [stored, want] of ref) {
          const t = ckpt.tensors.get(stored)!;
          const got = await ckpt.read(t.name);
          if (stored.includes('.layers.1.')) worst = Math.max(worst, relError(decodeToF32(got, t.dtype), want));
          else expect(got, stored).toEqual(await base.read(stored));
        }
        expect(worst).toBeLessThanOrEqual(1e-6);
      }
      // A name listed whole in target_modules is adapted in any layer (PEFT matches it before layers).
      const exact = bindAdapter(await openAdapter(files({ ...llamaConfig, target_modules: ['model.layers.0.self_attn.q_proj', 'q_proj', 'v_proj'], layers_to_transform: [1] }, await subset((k) => !k.includes('layers.0.self_attn.v_proj'))), 'exact'), base);
      expect([...exact.adapter!.targets.keys()].sort()).toEqual(['model.layers.0.self_attn.q_proj.weight', 'model.layers.1.self_attn.q_proj.weight', 'model.layers.1.self_attn.v_proj.weight']);
    });

    it('factors PEFT would not adapt, and configs PEFT refuses, are refused by name', async () => {
      await expect(openAdapter(files({ ...llamaConfig, layers_to_transform: [1] }, llamaWeights), 'x')).rejects.toThrow(
        /adapter_model\.safetensors: 2 problem\(s\): model\.layers\.0\.self_attn\.q_proj has factors but is in layer 0, and layers_to_transform is \[1\] \(PEFT would not adapt it\); model\.layers\.0\.self_attn\.v_proj has factors/,
      );
      await expect(openAdapter(files({ ...llamaConfig, layers_to_transform: [0, 1], layers_pattern: 'blocks' }, llamaWeights), 'x')).rejects.toThrow(
        /model\.layers\.0\.self_attn\.q_proj has factors but has no layer index after 'blocks', and layers_to_transform is \[0, 1\]/,
      );
      await expect(openAdapter(files({ ...llamaConfig, layers_pattern: 'layers' }, llamaWeights), 'x')).rejects.toThrow(/adapter_config\.json: layers_pattern is set without layers_to_transform/);
      await expect(openAdapter(files({ ...llamaConfig, target_modules: '.*proj', layers_to_transform: [1] }, llamaWeights), 'x')).rejects.toThrow(ConfigError);
      await expect(openAdapter(files({ ...llamaConfig, layers_to_transform: ['1'] }, llamaWeights), 'x')).rejects.toThrow(/adapter_config\.json: layers_to_transform is \["1"\], expected a layer index or a list of them/);
      await expect(openAdapter(files({ ...llamaConfig, layers_to_transform: [0, 1], layers_pattern: '(' }, llamaWeights), 'x')).rejects.toThrow(/layers_pattern '\(' is not a valid regular expression/);
      // Every layer listed, or an empty list (PEFT: no selection): the whole fixture is read.
      for (const layers of [[0, 1], []]) expect((await openAdapter(files({ ...llamaConfig, layers_to_transform: layers }, llamaWeights), 'x')).targets).toHaveLength(4);
    });
  });

  describe('refusals name the file and the problem', () => {
    const gpt2Config = JSON.parse(readFileSync(join(FIXTURES, 'tiny-gpt2-lora', ADAPTER_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
    const gpt2Weights = new Uint8Array(readFileSync(join(FIXTURES, 'tiny-gpt2-lora', ADAPTER_WEIGHTS_FILE)));

    function files(config: Record<string, unknown>, weights: Uint8Array = gpt2Weights): FileSet {
      return new Map([
        [ADAPTER_CONFIG_FILE, bytesSource(new TextEncoder().encode(JSON.stringify(config)), ADAPTER_CONFIG_FILE)],
        [ADAPTER_WEIGHTS_FILE, bytesSource(weights, ADAPTER_WEIGHTS_FILE)],
      ]);
    }
    async function rewrite(edit: (name: string, shape: number[]) => { name: string; shape: number[] } | null): Promise<Uint8Array> {
      const header = await readSafetensorsHeader(bytesSource(gpt2Weights, 'w'));
      const entries = header.tensors.flatMap((t) => {
        const e = edit(t.name, t.shape);
        if (!e) return [];
        const n = e.shape.reduce((x, y) => x * y, 1);
        return [{ name: e.name, dtype: 'F32' as const, shape: e.shape, data: encodeFromF32(Float32Array.from({ length: n }, () => Math.random() - 0.5), 'F32') }];
      });
      return writeSafetensors(entries);
    }
    const gpt2Base = (): Promise<Checkpoint> => openCheckpoint(folder('tiny-gpt2'), 'tiny-gpt2');

    it('DoRA, other PEFT types, missing files', async () => {
      await expect(openAdapter(files({ ...gpt2Config, use_dora: true }), 'x')).rejects.toThrow(ConfigError);
      await expect(openAdapter(files({ ...gpt2Config, use_dora: true }), 'x')).rejects.toThrow(/adapter_config\.json: use_dora is true: DoRA/);
      await expect(openAdapter(files({ ...gpt2Config, peft_type: 'IA3' }), 'x')).rejects.toThrow(/adapter_config\.json: peft_type is "IA3": only LoRA/);
      const dora = await rewrite((name, shape) => ({ name: name.replace('lora_B.weight', 'lora_magnitude_vector'), shape }));
      await expect(openAdapter(files(gpt2Config, dora), 'x')).rejects.toThrow(/adapter_model\.safetensors: .*lora_magnitude_vector' is a DoRA magnitude vector/);
      const noWeights = new Map([[ADAPTER_CONFIG_FILE, files(gpt2Config).get(ADAPTER_CONFIG_FILE)!]]);
      await expect(openAdapter(noWeights, 'x')).rejects.toThrow(SafetensorsError);
      await expect(openAdapter(files({ ...gpt2Config, r: 0 }), 'x')).rejects.toThrow(/adapter_config\.json: r is 0/);
    });

    it('a lone factor, a rank that disagrees with r', async () => {
      const lone = await rewrite((name, shape) => (name === 'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight' ? null : { name, shape }));
      await expect(openAdapter(files(gpt2Config, lone), 'x')).rejects.toThrow(/transformer\.h\.0\.attn\.c_attn has lora_A but no lora_B/);
      await expect(openAdapter(files({ ...gpt2Config, rank_pattern: {} }), 'x')).rejects.toThrow(/transformer\.h\.1\.attn\.c_attn: lora_A \[2, 32\] and lora_B \[96, 2\] do not have rank 4/);
    });

    it('targets the base lacks, shapes that do not fit, target_modules naming nothing', async () => {
      const llamaNames = await rewrite((name, shape) => ({ name: name.replace('transformer.h.0.attn.c_attn', 'model.layers.0.self_attn.q_proj'), shape }));
      const bad = bindAdapter.bind(null, await openAdapter(files({ ...gpt2Config, target_modules: ['c_attn', 'mlp.c_proj', 'q_proj'] }, llamaNames), 'x'), await gpt2Base());
      expect(bad).toThrow(IncompatibleCheckpointError);
      expect(bad).toThrow(/model\.layers\.0\.self_attn\.q_proj: base 'tiny-gpt2' has no weight model\.layers\.0\.self_attn\.q_proj\.weight/);
      expect(bad).toThrow(/target_modules entry 'q_proj' matches no module of base 'tiny-gpt2'/);
      const wrongShape = await rewrite((name, shape) => ({ name, shape: name.includes('h.0.mlp.c_proj.lora_A') ? [4, 32] : shape }));
      const shape = bindAdapter.bind(null, await openAdapter(files(gpt2Config, wrongShape), 'x'), await gpt2Base());
      expect(shape).toThrow(/transformer\.h\.0\.mlp\.c_proj: lora_B \[32, 4\] · lora_A \[4, 32\] does not fit base transformer\.h\.0\.mlp\.c_proj\.weight \[128, 32\] \(Conv1D, stored \(in, out\)\)/);
    });

    it("GPT-2 module paths with or without transformer. meet the base's names", async () => {
      const bare = await rewrite((name, shape) => ({ name: name.replace('base_model.model.transformer.', 'base_model.model.'), shape }));
      const ckpt = bindAdapter(await openAdapter(files(gpt2Config, bare), 'bare'), await gpt2Base());
      expect([...ckpt.adapter!.targets.keys()].sort()).toEqual(['h.0.attn.c_attn.weight', 'h.0.mlp.c_proj.weight', 'h.1.attn.c_attn.weight', 'h.1.mlp.c_proj.weight']);
      expect([...ckpt.adapter!.replaced].sort()).toEqual(['ln_f.bias', 'ln_f.weight']);
    });
  });
});
