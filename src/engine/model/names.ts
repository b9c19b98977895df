import type { ModelSpec } from '../io/spec.ts';

/**
 * Canonical weight names the forward passes read (GPT-2 with `transformer.` stripped, Llama
 * family as transformers names them), with the shape each must have. Optional entries may be
 * absent (a missing optional bias is treated as zero).
 */
export interface ForwardTensor {
  name: string;
  shape: number[];
  optional?: boolean;
}

export function headName(spec: ModelSpec, has: (name: string) => boolean): string {
  if (has('lm_head.weight')) return 'lm_head.weight';
  return spec.family === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight';
}

export function forwardTensors(spec: ModelSpec): ForwardTensor[] {
  const { vocabSize: V, hiddenSize: C, numHeads: NH, numKvHeads: NKV, headDim: HS, intermediateSize: FF, maxPositions: P } = spec;
  const out: ForwardTensor[] = [];
  if (spec.family === 'gpt2') {
    out.push({ name: 'wte.weight', shape: [V, C] }, { name: 'wpe.weight', shape: [P, C] });
    for (let i = 0; i < spec.numLayers; i++) {
      const h = `h.${i}`;
      out.push(
        { name: `${h}.ln_1.weight`, shape: [C] },
        { name: `${h}.ln_1.bias`, shape: [C] },
        { name: `${h}.attn.c_attn.weight`, shape: [C, 3 * C] },
        { name: `${h}.attn.c_attn.bias`, shape: [3 * C] },
        { name: `${h}.attn.c_proj.weight`, shape: [C, C] },
        { name: `${h}.attn.c_proj.bias`, shape: [C] },
        { name: `${h}.ln_2.weight`, shape: [C] },
        { name: `${h}.ln_2.bias`, shape: [C] },
        { name: `${h}.mlp.c_fc.weight`, shape: [C, FF] },
        { name: `${h}.mlp.c_fc.bias`, shape: [FF] },
        { name: `${h}.mlp.c_proj.weight`, shape: [FF, C] },
        { name: `${h}.mlp.c_proj.bias`, shape: [C] },
      );
    }
    out.push({ name: 'ln_f.weight', shape: [C] }, { name: 'ln_f.bias', shape: [C] }, { name: 'lm_head.weight', shape: [V, C], optional: true });
    return out;
  }
  out.push({ name: 'model.embed_tokens.weight', shape: [V, C] });
  for (let i = 0; i < spec.numLayers; i++) {
    const l = `model.layers.${i}`;
    const qkv: [string, number][] = [['q_proj', NH * HS], ['k_proj', NKV * HS], ['v_proj', NKV * HS]];
    out.push({ name: `${l}.input_layernorm.weight`, shape: [C] });
    for (const [p, n] of qkv) {
      out.push({ name: `${l}.self_attn.${p}.weight`, shape: [n, C] });
      out.push({ name: `${l}.self_attn.${p}.bias`, shape: [n], optional: !spec.attnBias });
    }
    out.push(
      { name: `${l}.self_attn.o_proj.weight`, shape: [C, NH * HS] },
      // Llama's attention_bias also puts a bias on o_proj; qwen2 has none there.
      { name: `${l}.self_attn.o_proj.bias`, shape: [C], optional: true },
      { name: `${l}.post_attention_layernorm.weight`, shape: [C] },
      { name: `${l}.mlp.gate_proj.weight`, shape: [FF, C] },
      { name: `${l}.mlp.up_proj.weight`, shape: [FF, C] },
      { name: `${l}.mlp.down_proj.weight`, shape: [C, FF] },
      { name: `${l}.mlp.gate_proj.bias`, shape: [FF], optional: true },
      { name: `${l}.mlp.up_proj.bias`, shape: [FF], optional: true },
      { name: `${l}.mlp.down_proj.bias`, shape: [C], optional: true },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [C] }, { name: 'lm_head.weight', shape: [V, C], optional: spec.tieWordEmbeddings });
  return out;
}
