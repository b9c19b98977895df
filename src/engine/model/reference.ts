import { IncompatibleCheckpointError, InputError } from '../errors.ts';
import type { ModelSpec } from '../io/spec.ts';
import { geluNewRef, siluMulRef } from '../kernels/activation.ref.ts';
import { attentionRef } from '../kernels/attention.ref.ts';
import { embeddingRef } from '../kernels/embedding.ref.ts';
import { layerNormRef } from '../kernels/layernorm.ref.ts';
import { lmHeadNllRef } from '../kernels/lmhead_nll.ref.ts';
import { matmulRef } from '../kernels/matmul.ref.ts';
import { rmsNormRef } from '../kernels/rmsnorm.ref.ts';
import { ropeRef } from '../kernels/rope.ref.ts';
import { forwardTensors, headName } from './names.ts';

/**
 * A straightforward float64 forward pass for both families, the oracle for the GPU forward:
 * one sequence, no cache; logits (T, V) and the NLL of each predicted token ids[1..T-1].
 * Weights are float64 values of the stored tensors (for F16/BF16, their exact decoding).
 */
export interface ReferenceOutput {
  logits: Float64Array; // (T, V)
  nll: number[]; // (T - 1)
}

export function referenceForward(spec: ModelSpec, weights: Map<string, Float64Array>, ids: number[]): ReferenceOutput {
  const { vocabSize: V, hiddenSize: C, numHeads: NH, numKvHeads: NKV, headDim: HS, intermediateSize: FF } = spec;
  const T = ids.length;
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= V) throw new InputError(`token id ${id} is outside the vocabulary [0, ${V})`);
  for (const t of forwardTensors(spec)) {
    const w = weights.get(t.name);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (!w && !t.optional) throw new IncompatibleCheckpointError('missing tensor', { tensor: t.name });
    if (w && w.length !== n) throw new IncompatibleCheckpointError(`has ${w.length} elements, expected ${n} (${t.shape.join('x')})`, { tensor: t.name });
  }
  const W = (name: string): Float64Array => weights.get(name)!;
  const opt = (name: string): Float64Array | undefined => weights.get(name);
  const add = (x: Float64Array, y: Float64Array): void => {
    for (let i = 0; i < x.length; i++) x[i]! += y[i]!;
  };
  const QD = NH * HS;
  const KVD = NKV * HS;
  const gpt2 = spec.family === 'gpt2';
  if (gpt2 && T > spec.maxPositions) throw new InputError(`${T} tokens exceed the model's ${spec.maxPositions} positions`);

  const x = gpt2 ? embeddingRef(ids, T, C, 0, W('wte.weight'), W('wpe.weight')) : embeddingRef(ids, T, C, 0, W('model.embed_tokens.weight'));
  for (let i = 0; i < spec.numLayers; i++) {
    let q: Float64Array;
    let k: Float64Array;
    let v: Float64Array;
    let attnOut: Float64Array;
    if (gpt2) {
      const h = `h.${i}`;
      const xn = layerNormRef(x, C, W(`${h}.ln_1.weight`), W(`${h}.ln_1.bias`), spec.normEps);
      const qkv = matmulRef(xn, T, C, W(`${h}.attn.c_attn.weight`), 'conv1d', 3 * C, W(`${h}.attn.c_attn.bias`));
      q = new Float64Array(T * C);
      k = new Float64Array(T * C);
      v = new Float64Array(T * C);
      for (let t = 0; t < T; t++) {
        q.set(qkv.subarray(t * 3 * C, t * 3 * C + C), t * C);
        k.set(qkv.subarray(t * 3 * C + C, t * 3 * C + 2 * C), t * C);
        v.set(qkv.subarray(t * 3 * C + 2 * C, t * 3 * C + 3 * C), t * C);
      }
      const att = attentionRef(q, k, v, 1, T, 0, NH, NKV, HS);
      attnOut = matmulRef(att, T, C, W(`${h}.attn.c_proj.weight`), 'conv1d', C, W(`${h}.attn.c_proj.bias`));
      add(x, attnOut);
      const xn2 = layerNormRef(x, C, W(`${h}.ln_2.weight`), W(`${h}.ln_2.bias`), spec.normEps);
      const ff = geluNewRef(matmulRef(xn2, T, C, W(`${h}.mlp.c_fc.weight`), 'conv1d', FF, W(`${h}.mlp.c_fc.bias`)));
      add(x, matmulRef(ff, T, FF, W(`${h}.mlp.c_proj.weight`), 'conv1d', C, W(`${h}.mlp.c_proj.bias`)));
    } else {
      const l = `model.layers.${i}`;
      const xn = rmsNormRef(x, C, W(`${l}.input_layernorm.weight`), spec.normEps);
      const proj = (p: string, n: number): Float64Array => matmulRef(xn, T, C, W(`${l}.self_attn.${p}.weight`), 'linear', n, opt(`${l}.self_attn.${p}.bias`));
      q = proj('q_proj', QD);
      k = proj('k_proj', KVD);
      v = proj('v_proj', KVD);
      ropeRef(q, T, T, 0, QD, 0, NH, HS, spec.ropeTheta);
      ropeRef(k, T, T, 0, KVD, 0, NKV, HS, spec.ropeTheta);
      const att = attentionRef(q, k, v, 1, T, 0, NH, NKV, HS);
      add(x, matmulRef(att, T, QD, W(`${l}.self_attn.o_proj.weight`), 'linear', C, opt(`${l}.self_attn.o_proj.bias`)));
      const xn2 = rmsNormRef(x, C, W(`${l}.post_attention_layernorm.weight`), spec.normEps);
      const gate = matmulRef(xn2, T, C, W(`${l}.mlp.gate_proj.weight`), 'linear', FF, opt(`${l}.mlp.gate_proj.bias`));
      const up = matmulRef(xn2, T, C, W(`${l}.mlp.up_proj.weight`), 'linear', FF, opt(`${l}.mlp.up_proj.bias`));
      add(x, matmulRef(siluMulRef(gate, up), T, FF, W(`${l}.mlp.down_proj.weight`), 'linear', C, opt(`${l}.mlp.down_proj.bias`)));
    }
  }
  const xf = gpt2 ? layerNormRef(x, C, W('ln_f.weight'), W('ln_f.bias'), spec.normEps) : rmsNormRef(x, C, W('model.norm.weight'), spec.normEps);
  const targets = ids.map((_, t) => (t + 1 < T ? ids[t + 1]! : -1));
  const { logits, nll } = lmHeadNllRef(xf, C, W(headName(spec, (n) => weights.has(n))), V, targets);
  return { logits, nll: Array.from(nll.subarray(0, Math.max(0, T - 1))) };
}
