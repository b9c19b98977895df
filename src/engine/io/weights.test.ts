import { describe, expect, it } from 'vitest';
import { IncompatibleCheckpointError } from '../errors.ts';
import { parseConfig } from './config.ts';
import type { ModelSpec } from './spec.ts';
import {
  SUPPORTED_MODEL_TYPES,
  architecture,
  bindWeights,
  canonicalName,
  checkArchitectureTable,
  classifyTensor,
  evalShapeFormula,
  expectedTensors,
  forwardWeights,
  layerOf,
  roleOf,
  storedName,
  type ArchitectureFile,
} from './weights.ts';

const gpt2Small = parseConfig({ model_type: 'gpt2', vocab_size: 50257, n_embd: 768, n_layer: 12, n_head: 12, n_positions: 1024 });
const llama = (extra: Record<string, unknown> = {}) =>
  parseConfig({
    model_type: 'llama',
    vocab_size: 128,
    hidden_size: 64,
    intermediate_size: 160,
    num_hidden_layers: 3,
    num_attention_heads: 8,
    num_key_value_heads: 2,
    max_position_embeddings: 256,
    ...extra,
  });

const phi3 = (extra: Record<string, unknown> = {}) =>
  parseConfig({
    model_type: 'phi3',
    vocab_size: 300,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    ...extra,
  });

const count = (shapes: { shape: number[]; kind: string; optional?: boolean }[]) =>
  shapes.filter((t) => t.kind === 'param' && !t.optional).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);

describe('expectedTensors', () => {
  it('GPT-2 small has the well-known 124,439,808 parameters and Conv1D (in, out) shapes', () => {
    const t = expectedTensors(gpt2Small);
    expect(count(t)).toBe(124_439_808);
    const byName = new Map(t.map((x) => [x.name, x]));
    expect(byName.get('wte.weight')).toEqual({ name: 'wte.weight', shape: [50257, 768], kind: 'param', layer: null, role: 'embed' });
    expect(byName.get('h.3.attn.c_attn.weight')?.shape).toEqual([768, 2304]);
    expect(byName.get('h.3.attn.c_proj.weight')?.shape).toEqual([768, 768]);
    expect(byName.get('h.3.mlp.c_fc.weight')?.shape).toEqual([768, 3072]);
    expect(byName.get('h.3.mlp.c_proj.weight')?.shape).toEqual([3072, 768]);
    expect(byName.get('h.11.attn.bias')).toEqual({ name: 'h.11.attn.bias', shape: [1, 1, 1024, 1024], kind: 'buffer', layer: 11, optional: true });
    expect(byName.get('h.0.attn.masked_bias')?.shape).toEqual([]);
    expect(byName.get('lm_head.weight')).toMatchObject({ optional: true, shape: [50257, 768] });
    expect(t[0]!.name).toBe('wte.weight');
    expect(t[t.length - 1]!.name).toBe('lm_head.weight');
    const untied = expectedTensors({ ...gpt2Small, tieWordEmbeddings: false });
    expect(untied.find((x) => x.name === 'lm_head.weight')?.optional).toBeUndefined();
  });

  it('Llama: GQA shapes, optional biases by config, head count formula', () => {
    const spec = llama();
    const t = expectedTensors(spec);
    const byName = new Map(t.map((x) => [x.name, x]));
    const [V, C, L, NH, NKV, HS, FF] = [128, 64, 3, 8, 2, 8, 160];
    expect(byName.get('model.layers.2.self_attn.q_proj.weight')?.shape).toEqual([NH * HS, C]);
    expect(byName.get('model.layers.2.self_attn.k_proj.weight')?.shape).toEqual([NKV * HS, C]);
    expect(byName.get('model.layers.2.self_attn.v_proj.weight')?.shape).toEqual([NKV * HS, C]);
    expect(byName.get('model.layers.2.self_attn.o_proj.weight')?.shape).toEqual([C, NH * HS]);
    expect(byName.get('model.layers.2.mlp.down_proj.weight')?.shape).toEqual([C, FF]);
    expect(byName.get('model.layers.0.self_attn.rotary_emb.inv_freq')).toMatchObject({ shape: [HS / 2], kind: 'buffer', optional: true });
    expect(byName.has('model.layers.0.self_attn.q_proj.bias')).toBe(false);
    expect(byName.get('lm_head.weight')?.optional).toBeUndefined();
    const perLayer = 2 * C + NH * HS * C + 2 * NKV * HS * C + C * NH * HS + 3 * C * FF;
    expect(count(t)).toBe(V * C + L * perLayer + C + V * C);

    const biased = new Map(expectedTensors(llama({ attention_bias: true, mlp_bias: true })).map((x) => [x.name, x]));
    expect(biased.get('model.layers.1.self_attn.k_proj.bias')?.shape).toEqual([NKV * HS]);
    expect(biased.get('model.layers.1.self_attn.o_proj.bias')?.shape).toEqual([C]);
    expect(biased.get('model.layers.1.mlp.up_proj.bias')?.shape).toEqual([FF]);
    const qwen = new Map(expectedTensors(llama({ model_type: 'qwen2', tie_word_embeddings: true })).map((x) => [x.name, x]));
    expect(qwen.get('model.layers.0.self_attn.q_proj.bias')?.shape).toEqual([NH * HS]);
    expect(qwen.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);
    expect(qwen.get('lm_head.weight')?.optional).toBe(true);
  });
});

describe('Phi-3 table', () => {
  it('fused qkv_proj (q | k | v rows) and gate_up_proj (gate | up rows), no biases, untied head', () => {
    const t = expectedTensors(phi3());
    const [V, C, L, NH, NKV, HS, FF] = [300, 32, 2, 4, 2, 8, 64];
    const byName = new Map(t.map((x) => [x.name, x]));
    expect(byName.get('model.layers.1.self_attn.qkv_proj.weight')).toEqual({ name: 'model.layers.1.self_attn.qkv_proj.weight', shape: [(NH + 2 * NKV) * HS, C], kind: 'param', layer: 1, role: 'attn.qkv' });
    expect(byName.get('model.layers.1.mlp.gate_up_proj.weight')).toMatchObject({ shape: [2 * FF, C], role: 'mlp.gate_up' });
    expect(byName.get('model.layers.0.mlp.down_proj.weight')).toMatchObject({ shape: [C, FF], role: 'mlp.down' });
    expect(byName.get('model.layers.0.self_attn.o_proj.weight')).toMatchObject({ shape: [C, NH * HS], role: 'attn.o' });
    expect(byName.get('lm_head.weight')).toMatchObject({ shape: [V, C], role: 'head' });
    expect(byName.get('lm_head.weight')?.optional).toBeUndefined();
    expect(expectedTensors(phi3({ tie_word_embeddings: true })).find((x) => x.name === 'lm_head.weight')?.optional).toBe(true);
    expect([...byName.keys()].filter((n) => n.endsWith('.bias'))).toEqual([]);
    const perLayer = 2 * C + (NH + 2 * NKV) * HS * C + C * NH * HS + 3 * C * FF;
    expect(count(t)).toBe(V * C + L * perLayer + C + V * C);
  });

  it('classifies, places and names Phi-3 tensors, bare base-model names included', () => {
    expect(canonicalName('phi3', 'layers.0.self_attn.qkv_proj.weight')).toBe('model.layers.0.self_attn.qkv_proj.weight');
    expect(classifyTensor('phi3', 'model.layers.1.mlp.gate_up_proj.weight')).toBe('param');
    expect(classifyTensor('phi3', 'model.layers.1.mlp.gate_proj.weight')).toBe('unknown');
    expect(classifyTensor('phi3', 'model.layers.1.self_attn.q_proj.weight')).toBe('unknown');
    expect(layerOf('phi3', 'model.layers.1.mlp.gate_up_proj.weight')).toBe(1);
    expect(roleOf('phi3', 'layers.0.self_attn.qkv_proj.weight')).toBe('attn.qkv');
    expect(roleOf('phi3', 'model.embed_tokens.weight')).toBe('embed');
    expect(roleOf('phi3', 'model.layers.0.self_attn.rotary_emb.inv_freq')).toBeNull();
    expect(roleOf('llama', 'model.layers.0.mlp.gate_proj.weight')).toBe('mlp.gate');
    expect(roleOf('gpt2', 'transformer.h.0.attn.c_attn.bias')).toBe('attn.qkv.bias');
    expect(roleOf('gpt2', 'h.0.attn.bias')).toBeNull();
  });
});

describe('roles and binding', () => {
  const specs: [string, ModelSpec][] = [
    ['gpt2', gpt2Small],
    ['llama', llama({ attention_bias: true, mlp_bias: true })],
    ['qwen2', llama({ model_type: 'qwen2', tie_word_embeddings: true })],
    ['phi3', phi3()],
  ];

  it('every learned tensor has a role, buffers have none, and a role appears once per block', () => {
    for (const [what, spec] of specs) {
      const t = expectedTensors(spec);
      for (const x of t) expect(x.role === undefined, `${what} ${x.name}`).toBe(x.kind === 'buffer');
      const layer0 = t.filter((x) => x.layer === 0 && x.role).map((x) => x.role);
      expect(new Set(layer0).size, what).toBe(layer0.length);
      expect(forwardWeights(spec).every((x) => x.kind === 'param' && x.role !== undefined)).toBe(true);
    }
  });

  it('binds fused or split attention, plain, gated or fused MLP, and the tied head to the embedding', () => {
    const names = (spec: ModelSpec) => bindWeights(spec, (t) => (t.optional ? undefined : t.name));
    const g = names(gpt2Small);
    expect(g.layout).toBe('conv1d');
    expect(g.head).toBe('wte.weight');
    expect(g.posEmbed).toBe('wpe.weight');
    expect(g.blocks[3]).toEqual({
      norm1: { w: 'h.3.ln_1.weight', b: 'h.3.ln_1.bias' },
      attn: { kind: 'fused', qkv: { w: 'h.3.attn.c_attn.weight', b: 'h.3.attn.c_attn.bias' } },
      o: { w: 'h.3.attn.c_proj.weight', b: 'h.3.attn.c_proj.bias' },
      norm2: { w: 'h.3.ln_2.weight', b: 'h.3.ln_2.bias' },
      mlp: { kind: 'plain', up: { w: 'h.3.mlp.c_fc.weight', b: 'h.3.mlp.c_fc.bias' } },
      down: { w: 'h.3.mlp.c_proj.weight', b: 'h.3.mlp.c_proj.bias' },
    });
    expect(g.normF).toEqual({ w: 'ln_f.weight', b: 'ln_f.bias' });
    const q = names(llama({ model_type: 'qwen2', tie_word_embeddings: true }));
    expect(q.layout).toBe('linear');
    expect(q.posEmbed).toBeUndefined();
    expect(q.head).toBe('model.embed_tokens.weight');
    expect(q.blocks[1]!.attn).toEqual({
      kind: 'split',
      q: { w: 'model.layers.1.self_attn.q_proj.weight', b: 'model.layers.1.self_attn.q_proj.bias' },
      k: { w: 'model.layers.1.self_attn.k_proj.weight', b: 'model.layers.1.self_attn.k_proj.bias' },
      v: { w: 'model.layers.1.self_attn.v_proj.weight', b: 'model.layers.1.self_attn.v_proj.bias' },
    });
    expect(q.blocks[1]!.o).toEqual({ w: 'model.layers.1.self_attn.o_proj.weight' });
    expect(q.blocks[1]!.mlp).toEqual({ kind: 'gated', gate: { w: 'model.layers.1.mlp.gate_proj.weight' }, up: { w: 'model.layers.1.mlp.up_proj.weight' } });
    const p = names(phi3());
    expect(p.head).toBe('lm_head.weight');
    expect(p.blocks[0]!.attn).toEqual({ kind: 'fused', qkv: { w: 'model.layers.0.self_attn.qkv_proj.weight' } });
    expect(p.blocks[0]!.mlp).toEqual({ kind: 'gated-fused', gateUp: { w: 'model.layers.0.mlp.gate_up_proj.weight' } });
    expect(p.blocks[0]!.down).toEqual({ w: 'model.layers.0.mlp.down_proj.weight' });
    // A present head is read even when the config ties it.
    expect(bindWeights(phi3({ tie_word_embeddings: true }), (t) => t.name).head).toBe('lm_head.weight');
  });

  it('a missing required tensor is an IncompatibleCheckpointError naming it; an untied head does not fall back', () => {
    const bind = (spec: ModelSpec, drop: string) => () => bindWeights(spec, (t) => (t.name === drop ? undefined : t.name));
    expect(bind(phi3(), 'model.layers.1.mlp.gate_up_proj.weight')).toThrow(IncompatibleCheckpointError);
    expect(bind(phi3(), 'model.layers.1.mlp.gate_up_proj.weight')).toThrow(/model\.layers\.1\.mlp\.gate_up_proj\.weight/);
    expect(bind(phi3(), 'lm_head.weight')).toThrow(/lm_head\.weight/);
    expect(bind(gpt2Small, 'h.0.ln_1.bias')).toThrow(/h\.0\.ln_1\.bias/);
  });

  it("stored names are save_pretrained's and canonicalise back", () => {
    expect(storedName('gpt2', 'h.0.attn.c_attn.weight')).toBe('transformer.h.0.attn.c_attn.weight');
    expect(storedName('gpt2', 'wte.weight')).toBe('transformer.wte.weight');
    expect(storedName('gpt2', 'h.0.attn.bias')).toBe('transformer.h.0.attn.bias');
    expect(storedName('gpt2', 'lm_head.weight')).toBe('lm_head.weight');
    expect(storedName('phi3', 'model.layers.0.self_attn.qkv_proj.weight')).toBe('model.layers.0.self_attn.qkv_proj.weight');
    for (const [, spec] of specs) for (const t of expectedTensors(spec)) expect(canonicalName(spec.family, storedName(spec.family, t.name))).toBe(t.name);
  });

  it('SUPPORTED_MODEL_TYPES are the tables\' model_types', () => {
    expect(SUPPORTED_MODEL_TYPES).toEqual({ gpt2: 'gpt2', llama: 'llama', mistral: 'llama', qwen2: 'llama', phi3: 'phi3', qwen3: 'qwen3', gemma2: 'gemma2', olmo2: 'olmo2' });
  });

  it('refuses a table the forward passes could not bind', () => {
    const llamaTable = architecture('llama');
    const edit = (f: (t: ArchitectureFile) => void): ArchitectureFile => {
      const copy = JSON.parse(JSON.stringify(llamaTable)) as ArchitectureFile;
      f(copy);
      return copy;
    };
    expect(() => checkArchitectureTable(edit(() => undefined))).not.toThrow();
    const bad: [string, (t: ArchitectureFile) => void, RegExp][] = [
      ['a param without a role', (t) => delete t.layer_templates[0]!.role, /input_layernorm\.weight: role 'undefined' is not a block role/],
      ['an unknown role', (t) => void (t.layer_templates[1]!.role = 'attn.query' as never), /role 'attn\.query' is not a block role/],
      ['a global role in a block', (t) => void (t.layer_templates[1]!.role = 'embed'), /is not a block role/],
      ['a role twice', (t) => void (t.layer_templates[3]!.role = 'attn.q'), /role 'attn\.q' appears twice/],
      ['split attention with a fused one', (t) => t.layer_templates.push({ name: 'model.layers.${layer}.x', role: 'attn.qkv', shape: ['C'] }), /needs 'attn\.qkv' or all of/],
      ['no v projection', (t) => (t.layer_templates = t.layer_templates.filter((r) => r.role !== 'attn.v')), /needs 'attn\.qkv' or all of/],
      ['a gate without up', (t) => (t.layer_templates = t.layer_templates.filter((r) => r.role !== 'mlp.up' && r.role !== 'mlp.up.bias')), /needs 'mlp\.gate_up', or 'mlp\.up'/],
      ['a buffer with a role', (t) => void (t.layer_templates[16]!.role = 'norm1'), /a buffer has no role/],
      ['an unknown spec flag', (t) => void (t.layer_templates[2]!.when = 'qkvBias'), /unknown spec flag 'qkvBias'/],
      ['no head', (t) => t.post_weights.pop(), /no 'head' row/],
      ['a bad layout', (t) => void (t.layout = 'rows' as never), /layout 'rows'/],
      ['a fallback to a missing role', (t) => void (t.post_weights[1]!.fallback = 'pos_embed'), /fallback 'pos_embed' is not another row's role/],
      ['no norm before or after attention', (t) => (t.layer_templates = t.layer_templates.filter((r) => r.role !== 'norm1')), /needs 'norm1' or 'attn\.post_norm'/],
      ['no norm before or after the MLP', (t) => (t.layer_templates = t.layer_templates.filter((r) => r.role !== 'norm2')), /needs 'norm2' or 'mlp\.post_norm'/],
      ['a q norm without a k norm', (t) => t.layer_templates.push({ name: 'model.layers.${layer}.q_norm', role: 'attn.q_norm', shape: ['HS'] }), /'attn\.q_norm' and 'attn\.k_norm' come together/],
    ];
    for (const [what, f, message] of bad) expect(() => checkArchitectureTable(edit(f)), what).toThrow(message);
  });
});

describe('names', () => {
  it('canonicalises GPT-2 prefixed names and bare LlamaModel names', () => {
    expect(canonicalName('gpt2', 'transformer.h.0.ln_1.weight')).toBe('h.0.ln_1.weight');
    expect(canonicalName('gpt2', 'h.0.ln_1.weight')).toBe('h.0.ln_1.weight');
    expect(canonicalName('gpt2', 'lm_head.weight')).toBe('lm_head.weight');
    expect(canonicalName('llama', 'model.layers.0.mlp.up_proj.weight')).toBe('model.layers.0.mlp.up_proj.weight');
    expect(canonicalName('llama', 'layers.0.mlp.up_proj.weight')).toBe('model.layers.0.mlp.up_proj.weight');
    expect(canonicalName('llama', 'embed_tokens.weight')).toBe('model.embed_tokens.weight');
    expect(canonicalName('llama', 'lm_head.weight')).toBe('lm_head.weight');
  });

  it('classifies params, buffers and unknown tensors, prefixed or bare', () => {
    for (const name of ['transformer.h.5.attn.c_attn.weight', 'h.5.attn.c_attn.weight', 'transformer.wte.weight', 'wpe.weight', 'ln_f.bias', 'lm_head.weight']) {
      expect(classifyTensor('gpt2', name), name).toBe('param');
    }
    for (const name of ['transformer.h.5.attn.bias', 'h.0.attn.masked_bias']) expect(classifyTensor('gpt2', name), name).toBe('buffer');
    for (const name of ['h.x.attn.bias', 'transformer.h.0.attn.c_attn.weight.extra', 'score.weight', 'h.0.attn.q_proj.weight']) {
      expect(classifyTensor('gpt2', name), name).toBe('unknown');
    }
    expect(classifyTensor('llama', 'model.layers.12.self_attn.rotary_emb.inv_freq')).toBe('buffer');
    expect(classifyTensor('llama', 'model.layers.12.self_attn.q_proj.bias')).toBe('param');
    expect(classifyTensor('llama', 'layers.3.post_attention_layernorm.weight')).toBe('param');
    expect(classifyTensor('llama', 'model.norm.weight')).toBe('param');
    expect(classifyTensor('llama', 'h.0.ln_1.weight')).toBe('unknown');
  });

  it('finds the layer of a tensor', () => {
    expect(layerOf('gpt2', 'transformer.h.11.mlp.c_fc.bias')).toBe(11);
    expect(layerOf('gpt2', 'h.0.attn.bias')).toBe(0);
    expect(layerOf('gpt2', 'wte.weight')).toBeNull();
    expect(layerOf('gpt2', 'h.1.foo')).toBeNull();
    expect(layerOf('llama', 'model.layers.31.mlp.down_proj.weight')).toBe(31);
    expect(layerOf('llama', 'lm_head.weight')).toBeNull();
  });
});

describe('shape formulas', () => {
  it('evaluates integer arithmetic and refuses inexact division or unknown names', () => {
    const vars = { C: 12, NH: 4, HS: 3 };
    expect(evalShapeFormula('3*C', vars)).toBe(36);
    expect(evalShapeFormula('(NH + 2) * HS - 1', vars)).toBe(17);
    expect(evalShapeFormula('C/NH', vars)).toBe(3);
    expect(() => evalShapeFormula('HS/2', vars)).toThrow(/divide exactly/);
    expect(() => evalShapeFormula('X*2', vars)).toThrow(/unknown variable/);
    expect(() => evalShapeFormula('C*', vars)).toThrow(/bad shape formula/);
    expect(() => evalShapeFormula('C % 2', vars)).toThrow(/bad shape formula/);
  });
});
