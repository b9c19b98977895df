import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, IncompatibleCheckpointError, InputError, SafetensorsError, TokenizerError } from '../errors.ts';
import { openCheckpoint } from './checkpoint.ts';
import { decodeToF32, encodeFromF32, type DType } from './dtypes.ts';
import { inspectCheckpoint, summarise } from './inspect.ts';
import { writeSafetensors } from './safetensors.ts';
import { bytesSource, type ByteSource, type FileSet } from './source.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'e2e', 'fixtures');

/** A fixture folder as a FileSet whose sources count the bytes read. */
function fixture(name: string): { files: Map<string, ByteSource>; bytesRead: () => number } {
  let read = 0;
  const files = new Map<string, ByteSource>();
  for (const file of readdirSync(join(FIXTURES, name))) {
    const inner = bytesSource(new Uint8Array(readFileSync(join(FIXTURES, name, file))), file);
    files.set(file, {
      name: file,
      size: inner.size,
      read(offset, length) {
        read += length;
        return inner.read(offset, length);
      },
    });
  }
  return { files, bytesRead: () => read };
}

function text(value: unknown, name: string): ByteSource {
  return bytesSource(new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value)), name);
}

// A tiny in-memory GPT-2: V=11, C=4, L=2, NH=2, P=5, FF=16.
const smallConfig = { model_type: 'gpt2', vocab_size: 11, n_embd: 4, n_layer: 2, n_head: 2, n_positions: 5 };
function smallTensors(prefix = 'transformer.'): { name: string; dtype: DType; shape: number[]; data: Uint8Array }[] {
  const shapes: [string, number[]][] = [['wte.weight', [11, 4]], ['wpe.weight', [5, 4]], ['ln_f.weight', [4]], ['ln_f.bias', [4]]];
  for (let l = 0; l < 2; l++) {
    shapes.push(
      [`h.${l}.ln_1.weight`, [4]], [`h.${l}.ln_1.bias`, [4]], [`h.${l}.attn.c_attn.weight`, [4, 12]], [`h.${l}.attn.c_attn.bias`, [12]],
      [`h.${l}.attn.c_proj.weight`, [4, 4]], [`h.${l}.attn.c_proj.bias`, [4]], [`h.${l}.ln_2.weight`, [4]], [`h.${l}.ln_2.bias`, [4]],
      [`h.${l}.mlp.c_fc.weight`, [4, 16]], [`h.${l}.mlp.c_fc.bias`, [16]], [`h.${l}.mlp.c_proj.weight`, [16, 4]], [`h.${l}.mlp.c_proj.bias`, [4]],
    );
  }
  let k = 0;
  return shapes.map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { name: prefix + name, dtype: 'F32' as DType, shape, data: encodeFromF32(Float32Array.from({ length: n }, () => ((k++ * 7919) % 101) / 100 - 0.5), 'F32') };
  });
}

function smallFolder(tensors = smallTensors(), config: unknown = smallConfig): Map<string, ByteSource> {
  return new Map([
    ['config.json', text(config, 'config.json')],
    ['model.safetensors', bytesSource(writeSafetensors(tensors), 'model.safetensors')],
  ]);
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

// Parameter counts from the architecture formulas, written out independently of weights.ts.
function gpt2Params(V: number, C: number, L: number, P: number, FF: number): number {
  return V * C + P * C + L * (4 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * FF + FF) + (FF * C + C)) + 2 * C;
}
function llamaParams(V: number, C: number, L: number, NH: number, NKV: number, HS: number, FF: number, qkvBias: boolean, tied: boolean): number {
  const attn = C * NH * HS + 2 * C * NKV * HS + NH * HS * C + (qkvBias ? NH * HS + 2 * NKV * HS : 0);
  return V * C + L * (2 * C + attn + 3 * C * FF) + C + (tied ? 0 : V * C);
}

describe('fixtures', () => {
  it('tiny-gpt2: F32, transformer.-prefixed, attn.bias buffers listed but not counted, tied head', async () => {
    const { files, bytesRead } = fixture('tiny-gpt2');
    const ckpt = await openCheckpoint(files, 'tiny-gpt2');
    expect(ckpt.spec).toMatchObject({ modelType: 'gpt2', vocabSize: 300, hiddenSize: 32, numLayers: 2, numHeads: 4, maxPositions: 64, intermediateSize: 128, tieWordEmbeddings: true });
    expect(ckpt.sharded).toBe(false);
    const wte = ckpt.tensors.get('wte.weight')!;
    expect(wte).toMatchObject({ storedName: 'transformer.wte.weight', dtype: 'F32', shape: [300, 32], file: 'model.safetensors', kind: 'param', layer: null });
    expect(ckpt.tensors.get('h.1.attn.bias')).toMatchObject({ kind: 'buffer', layer: 1, shape: [1, 1, 64, 64] });
    expect(ckpt.tensors.has('lm_head.weight')).toBe(false);
    // Opening reads config, tokenizer and headers only.
    const size = [...files.values()].reduce((a, f) => a + f.size, 0);
    expect(bytesRead()).toBeLessThan(files.get('config.json')!.size + files.get('tokenizer.json')!.size + 8 + 5000);
    const before = bytesRead();
    const mask = decodeToF32(await ckpt.read('h.0.attn.bias'), 'F32');
    expect(bytesRead() - before).toBe(64 * 64 * 4);
    expect(bytesRead()).toBeLessThan(size / 2);
    expect(mask[0 * 64 + 0]).toBe(1);
    expect(mask[0 * 64 + 1]).toBe(0);
    expect(mask[63 * 64 + 62]).toBe(1);
    expect(await ckpt.read('transformer.h.0.attn.bias')).toEqual(await ckpt.read('h.0.attn.bias'));
    // Norm weights near 1, other weights small but non-zero.
    const ln = decodeToF32(await ckpt.read('h.0.ln_1.weight'), 'F32');
    expect(Math.min(...ln)).toBeGreaterThan(0.7);
    expect(Math.max(...ln)).toBeLessThan(1.3);
    const w = decodeToF32(await ckpt.read('h.0.attn.c_attn.weight'), 'F32');
    const std = Math.sqrt(w.reduce((a, x) => a + x * x, 0) / w.length);
    expect(std).toBeGreaterThan(0.05);
    expect(std).toBeLessThan(0.12);

    const s = summarise(ckpt);
    expect(s.parameterCount).toBe(gpt2Params(300, 32, 2, 64, 128));
    expect(s.bufferCount).toBe(2 * (64 * 64 + 1));
    expect(s.tensors.filter((t) => t.kind === 'buffer')).toHaveLength(4);
    expect(s.dtypes).toEqual({ F32: s.parameterCount + s.bufferCount });
    expect(s.totalBytes).toBe(4 * (s.parameterCount + s.bufferCount));
    expect(s.files).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    expect(s.hasTokenizer).toBe(true);
  });

  it('tiny-llama: BF16 in two shards with an index, GQA, untied head', async () => {
    const ckpt = await openCheckpoint(fixture('tiny-llama').files, 'tiny-llama');
    expect(ckpt.sharded).toBe(true);
    expect(ckpt.spec).toMatchObject({ modelType: 'llama', numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 64, tieWordEmbeddings: false });
    expect(ckpt.weightFiles).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(ckpt.tensors.get('model.layers.1.self_attn.k_proj.weight')).toMatchObject({ shape: [16, 32], dtype: 'BF16', layer: 1 });
    expect(new Set([...ckpt.tensors.values()].map((t) => t.file)).size).toBe(2);
    expect(ckpt.metadata).toEqual({ format: 'pt' });
    const s = summarise(ckpt);
    expect(s.parameterCount).toBe(llamaParams(300, 32, 2, 4, 2, 8, 64, false, false));
    expect(s.bufferCount).toBe(0);
    expect(s.files).toEqual(['config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'tokenizer.json']);
    const lmHead = ckpt.tensors.get('lm_head.weight')!;
    expect(lmHead.file).toBe('model-00002-of-00002.safetensors');
    expect((await ckpt.read('lm_head.weight')).byteLength).toBe(300 * 32 * 2);
  });

  it('tiny-qwen2: F16, q/k/v biases, tied head', async () => {
    const s = await inspectCheckpoint(fixture('tiny-qwen2').files, 'tiny-qwen2');
    expect(s).toMatchObject({ modelType: 'qwen2', family: 'llama', sharded: false });
    expect(s.parameterCount).toBe(llamaParams(300, 32, 2, 4, 2, 8, 64, true, true));
    expect(s.tensors.find((t) => t.name === 'model.layers.0.self_attn.v_proj.bias')).toMatchObject({ shape: [16], dtype: 'F16' });
    expect(Object.keys(s.dtypes)).toEqual(['F16']);
  });

  it('tiny-phi3: BF16, fused qkv_proj and gate_up_proj read by role, untied head, sliding window', async () => {
    const ckpt = await openCheckpoint(fixture('tiny-phi3').files, 'tiny-phi3');
    expect(ckpt.spec).toMatchObject({ modelType: 'phi3', family: 'phi3', numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 64, normEps: 1e-5, slidingWindow: 31, tieWordEmbeddings: false });
    expect(ckpt.tensors.get('model.layers.1.self_attn.qkv_proj.weight')).toMatchObject({ shape: [(4 + 2 * 2) * 8, 32], dtype: 'BF16', kind: 'param', layer: 1, role: 'attn.qkv' });
    expect(ckpt.tensors.get('model.layers.0.mlp.gate_up_proj.weight')).toMatchObject({ shape: [2 * 64, 32], layer: 0, role: 'mlp.gate_up' });
    expect(ckpt.tensors.get('lm_head.weight')).toMatchObject({ shape: [300, 32], layer: null, role: 'head' });
    // Same parameter count as the split-projection Llama of these shapes (fusing moves no weight).
    expect(summarise(ckpt).parameterCount).toBe(llamaParams(300, 32, 2, 4, 2, 8, 64, false, false));
    for (const ft of ['tiny-phi3-ft-a', 'tiny-phi3-ft-b']) {
      const other = await openCheckpoint(fixture(ft).files);
      expect([...other.tensors.keys()]).toEqual([...ckpt.tensors.keys()]);
      const a = decodeToF32(await ckpt.read('model.layers.1.mlp.gate_up_proj.weight'), 'BF16');
      const b = decodeToF32(await other.read('model.layers.1.mlp.gate_up_proj.weight'), 'BF16');
      const rms = Math.sqrt(a.reduce((sum, x, i) => sum + (x - b[i]!) ** 2, 0) / a.length);
      expect(rms).toBeGreaterThan(0.005);
      expect(rms).toBeLessThan(0.02);
    }
  });

  it('fine-tunes share the base layout and differ by small perturbations of params only', async () => {
    const base = await openCheckpoint(fixture('tiny-gpt2').files);
    for (const ft of ['tiny-gpt2-ft-a', 'tiny-gpt2-ft-b', 'tiny-gpt2-ft-c']) {
      const other = await openCheckpoint(fixture(ft).files);
      expect([...other.tensors.keys()]).toEqual([...base.tensors.keys()]);
      const a = decodeToF32(await base.read('h.1.mlp.c_fc.weight'), 'F32');
      const b = decodeToF32(await other.read('h.1.mlp.c_fc.weight'), 'F32');
      const rms = Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0) / a.length);
      expect(rms).toBeGreaterThan(0.005);
      expect(rms).toBeLessThan(0.02);
      expect(await other.read('h.0.attn.bias')).toEqual(await base.read('h.0.attn.bias'));
    }
    const llama = await openCheckpoint(fixture('tiny-llama').files);
    for (const ft of ['tiny-llama-ft-a', 'tiny-llama-ft-b']) {
      const other = await openCheckpoint(fixture(ft).files);
      expect(other.sharded).toBe(true);
      expect(await other.read('model.norm.weight')).not.toEqual(await llama.read('model.norm.weight'));
    }
  });

  it('every fixture opens; the byte-level ones share one tokenizer.json, the others their family\'s', () => {
    const dirs = readdirSync(FIXTURES).filter((d) => d.startsWith('tiny-'));
    const gpt2Style = ['tiny-gpt2', 'tiny-gpt2-ft-a', 'tiny-gpt2-ft-b', 'tiny-gpt2-ft-c', 'tiny-llama', 'tiny-llama-ft-a', 'tiny-llama-ft-b', 'tiny-phi3', 'tiny-phi3-ft-a', 'tiny-phi3-ft-b', 'tiny-qwen2'];
    // The families added with their own RoPE scaling, norms or tokenizers (make-fixtures.ts familyFixtures).
    const families = ['tiny-gemma2', 'tiny-gemma2-ft-a', 'tiny-gemma2-ft-b', 'tiny-llama-dynamic', 'tiny-llama2-linear', 'tiny-llama3', 'tiny-llama3-ft-a', 'tiny-llama3-ft-b', 'tiny-olmo2', 'tiny-olmo2-ft-a', 'tiny-olmo2-ft-b', 'tiny-qwen2-yarn', 'tiny-qwen3', 'tiny-qwen3-ft-a', 'tiny-qwen3-ft-b'];
    // PEFT LoRA adapters over tiny-gpt2 and tiny-llama (scripts/make_lora_fixtures.py): adapter_config.json, no config.json.
    const adapters = ['tiny-gpt2-lora', 'tiny-llama-lora'];
    expect(dirs.sort()).toEqual([...gpt2Style, ...families, ...adapters].sort());
    for (const d of adapters) expect(existsSync(join(FIXTURES, d, 'adapter_config.json')) && !existsSync(join(FIXTURES, d, 'config.json')), d).toBe(true);
    const tok = (d: string): Buffer => readFileSync(join(FIXTURES, d, 'tokenizer.json'));
    for (const d of [...gpt2Style, 'tiny-llama-dynamic', 'tiny-olmo2', 'tiny-olmo2-ft-a', 'tiny-olmo2-ft-b']) expect(tok(d).equals(tok('tiny-gpt2')), d).toBe(true);
    for (const d of ['tiny-qwen3', 'tiny-qwen3-ft-a', 'tiny-qwen3-ft-b']) expect(tok(d).equals(tok('tiny-qwen2-yarn')), d).toBe(true);
    for (const f of ['tiny-llama3', 'tiny-gemma2']) for (const s of ['a', 'b']) expect(tok(`${f}-ft-${s}`).equals(tok(f))).toBe(true);
    for (const d of ['tiny-llama3', 'tiny-llama2-linear', 'tiny-qwen3', 'tiny-gemma2']) expect(tok(d).equals(tok('tiny-gpt2')), d).toBe(false);
  });
});

describe('sharded loading errors', () => {
  it('names a missing shard', async () => {
    const { files } = fixture('tiny-llama');
    files.delete('model-00002-of-00002.safetensors');
    const e = await rejection(openCheckpoint(files));
    expect(e).toBeInstanceOf(SafetensorsError);
    expect(e.message).toMatch(/^model\.safetensors\.index\.json: .*not in the folder: model-00002-of-00002\.safetensors/);
  });

  it('reports every index/shard disagreement', async () => {
    const { files } = fixture('tiny-llama');
    const index = JSON.parse(new TextDecoder().decode(await files.get('model.safetensors.index.json')!.read(0, files.get('model.safetensors.index.json')!.size))) as {
      weight_map: Record<string, string>;
    };
    index.weight_map['model.norm.weight'] = 'model-00001-of-00002.safetensors'; // actually in shard 2
    index.weight_map['ghost.weight'] = 'model-00002-of-00002.safetensors';
    files.set('model.safetensors.index.json', text(index, 'model.safetensors.index.json'));
    const e = await rejection(openCheckpoint(files));
    expect(e).toBeInstanceOf(SafetensorsError);
    expect(e.message).toContain('model-00001-of-00002.safetensors lacks 1 tensor(s) that model.safetensors.index.json places there: model.norm.weight');
    expect(e.message).toContain('model-00002-of-00002.safetensors lacks 1 tensor(s) that model.safetensors.index.json places there: ghost.weight');
    expect(e.message).toContain('model-00002-of-00002.safetensors holds 1 tensor(s) that model.safetensors.index.json does not place there: model.norm.weight');
  });

  it('rejects a malformed index and a corrupt shard, naming the file', async () => {
    const { files } = fixture('tiny-llama');
    files.set('model.safetensors.index.json', text('{"weight_map": [1]}', 'model.safetensors.index.json'));
    expect((await rejection(openCheckpoint(files))).message).toMatch(/^model\.safetensors\.index\.json: must contain "weight_map"/);
    files.set('model.safetensors.index.json', text('{not json', 'model.safetensors.index.json'));
    expect((await rejection(openCheckpoint(files))).message).toMatch(/^model\.safetensors\.index\.json: not valid JSON/);
    const good = fixture('tiny-llama').files;
    const shard = good.get('model-00001-of-00002.safetensors')!;
    good.set('model-00001-of-00002.safetensors', bytesSource((await shard.read(0, shard.size)).subarray(0, shard.size - 3), 'model-00001-of-00002.safetensors'));
    const e = await rejection(openCheckpoint(good));
    expect(e).toBeInstanceOf(SafetensorsError);
    expect(e.message).toMatch(/^model-00001-of-00002\.safetensors[,:] /);
  });
});

describe('checkpoint validation', () => {
  it('opens a bare-named GPT-2 (no transformer. prefix) and keeps unknown tensors', async () => {
    const tensors = smallTensors('');
    tensors.push({ name: 'score.weight', dtype: 'F32', shape: [2, 4], data: new Uint8Array(32) });
    tensors.push({ name: 'h.0.attn.bias', dtype: 'BOOL', shape: [1, 1, 5, 5], data: new Uint8Array(25).fill(1) });
    const ckpt = await openCheckpoint(smallFolder(tensors), 'bare');
    expect(ckpt.tensors.get('score.weight')?.kind).toBe('unknown');
    expect(ckpt.tensors.get('h.0.attn.bias')).toMatchObject({ kind: 'buffer', dtype: 'BOOL' });
    expect(ckpt.tensors.get('wte.weight')?.storedName).toBe('wte.weight');
    expect([...ckpt.tensors.keys()].at(-1)).toBe('score.weight');
    const s = summarise(ckpt);
    expect(s.parameterCount).toBe(gpt2Params(11, 4, 2, 5, 16));
    expect(s.dtypes.BOOL).toBe(25);
    expect(s.hasTokenizer).toBe(false);
    await expect(ckpt.read('nope')).rejects.toBeInstanceOf(InputError);
  });

  it('lists all missing tensors and shape mismatches at once', async () => {
    const tensors = smallTensors().filter((t) => t.name !== 'transformer.h.1.ln_2.bias' && t.name !== 'transformer.wpe.weight');
    const fc = tensors.find((t) => t.name === 'transformer.h.0.mlp.c_fc.weight')!;
    fc.shape = [16, 4]; // transposed: an nn.Linear layout where Conv1D is expected
    const e = await rejection(openCheckpoint(smallFolder(tensors)));
    expect(e).toBeInstanceOf(IncompatibleCheckpointError);
    expect(e.message).toMatch(/^model\.safetensors: checkpoint does not match its config\.json \(gpt2\): 3 problem\(s\)/);
    expect(e.message).toContain('missing wpe.weight [5, 4]');
    expect(e.message).toContain('missing h.1.ln_2.bias [4]');
    expect(e.message).toContain('h.0.mlp.c_fc.weight: shape [16, 4] in model.safetensors, expected [4, 16]');
  });

  it('refuses extra layers, duplicate canonical names and an untied config without lm_head', async () => {
    const extra = smallTensors();
    extra.push({ name: 'transformer.h.2.ln_1.weight', dtype: 'F32', shape: [4], data: new Uint8Array(16) });
    expect((await rejection(openCheckpoint(smallFolder(extra)))).message).toContain('belongs to layer 2, but config.json has 2 layers');
    const dup = smallTensors();
    dup.push({ name: 'wte.weight', dtype: 'F32', shape: [11, 4], data: new Uint8Array(176) });
    expect((await rejection(openCheckpoint(smallFolder(dup)))).message).toMatch(/'wte\.weight' in model\.safetensors and 'transformer\.wte\.weight' in model\.safetensors are the same tensor/);
    const untied = await rejection(openCheckpoint(smallFolder(smallTensors(), { ...smallConfig, tie_word_embeddings: false })));
    expect(untied.message).toContain('missing lm_head.weight [11, 4]');
  });

  it('needs config.json and weights; bad config/tokenizer JSON gives typed errors', async () => {
    const noConfig = smallFolder();
    noConfig.delete('config.json');
    const e = await rejection(openCheckpoint(noConfig));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(/^config\.json: missing/);
    const noWeights = new Map([['config.json', text(smallConfig, 'config.json')], ['pytorch_model.bin', text('x', 'pytorch_model.bin')]]);
    expect((await rejection(openCheckpoint(noWeights))).message).toMatch(/no weights found.*not supported/);
    const badConfig = smallFolder(smallTensors(), '{"model_type": ');
    expect(await rejection(openCheckpoint(badConfig))).toBeInstanceOf(ConfigError);
    const badTok = smallFolder();
    badTok.set('tokenizer.json', text('{oops', 'tokenizer.json'));
    const t = await rejection(openCheckpoint(badTok));
    expect(t).toBeInstanceOf(TokenizerError);
    expect(t.message).toMatch(/^tokenizer\.json: not valid JSON/);
  });

  it('honours an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const files: FileSet = smallFolder();
    await expect(inspectCheckpoint(files, 'x', { signal: controller.signal })).rejects.toMatchObject({ code: 'cancelled' });
  });
});
