import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.ts';
import { canonicalName, classifyTensor, evalShapeFormula, expectedTensors, layerOf } from './weights.ts';

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

const count = (shapes: { shape: number[]; kind: string; optional?: boolean }[]) =>
  shapes.filter((t) => t.kind === 'param' && !t.optional).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);

describe('expectedTensors', () => {
  it('GPT-2 small has the well-known 124,439,808 parameters and Conv1D (in, out) shapes', () => {
    const t = expectedTensors(gpt2Small);
    expect(count(t)).toBe(124_439_808);
    const byName = new Map(t.map((x) => [x.name, x]));
    expect(byName.get('wte.weight')).toEqual({ name: 'wte.weight', shape: [50257, 768], kind: 'param', layer: null });
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
