import { IncompatibleCheckpointError, InputError } from '../errors.ts';
import type { Affine } from '../io/roles.ts';
import type { ModelSpec } from '../io/spec.ts';
import { bindWeights } from '../io/weights.ts';
import { geluNewRef, siluMulRef } from '../kernels/activation.ref.ts';
import { attentionRef } from '../kernels/attention.ref.ts';
import { embeddingRef } from '../kernels/embedding.ref.ts';
import { layerNormRef } from '../kernels/layernorm.ref.ts';
import { lmHeadNllRef } from '../kernels/lmhead_nll.ref.ts';
import { matmulRef } from '../kernels/matmul.ref.ts';
import { rmsNormRef } from '../kernels/rmsnorm.ref.ts';
import { ropeRef } from '../kernels/rope.ref.ts';
import { checkForwardSupport } from './support.ts';

/**
 * A straightforward float64 forward pass, the oracle for the GPU forward: one sequence, no
 * cache; logits (T, V) and the NLL of each predicted token ids[1..T-1]. Weights are float64
 * values of the stored tensors (for F16/BF16, their exact decoding), bound by role from the
 * architecture table like the GPU forward's, so both read fused and split weights alike.
 */
export interface ReferenceOutput {
  logits: Float64Array; // (T, V)
  nll: number[]; // (T - 1)
}

export function referenceForward(spec: ModelSpec, weights: Map<string, Float64Array>, ids: number[]): ReferenceOutput {
  const { vocabSize: V, hiddenSize: C, numHeads: NH, numKvHeads: NKV, headDim: HS, intermediateSize: FF } = spec;
  const T = ids.length;
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= V) throw new InputError(`token id ${id} is outside the vocabulary [0, ${V})`);
  const w = bindWeights(spec, (t) => {
    const values = weights.get(t.name);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (values && values.length !== n) throw new IncompatibleCheckpointError(`has ${values.length} elements, expected ${n} (${t.shape.join('x')})`, { tensor: t.name });
    return values;
  });
  checkForwardSupport(spec, w);
  const add = (x: Float64Array, y: Float64Array): void => {
    for (let i = 0; i < x.length; i++) x[i]! += y[i]!;
  };
  const QD = NH * HS;
  const KVD = NKV * HS;
  if (spec.positions === 'learned' && T > spec.maxPositions) throw new InputError(`${T} tokens exceed the model's ${spec.maxPositions} positions`);
  const norm = (x: Float64Array, n: Affine<Float64Array>): Float64Array =>
    spec.norm === 'layernorm' ? layerNormRef(x, C, n.w, n.b!, spec.normEps) : rmsNormRef(x, C, n.w, spec.normEps);
  // Output features [n0, n0 + N) of a projection with NW output features, (T, K) -> (T, N).
  const proj = (x: Float64Array, K: number, l: Affine<Float64Array>, N: number, n0 = 0, NW = n0 + N): Float64Array => matmulRef(x, T, K, l.w, w.layout, N, l.b, n0, NW);

  const x = embeddingRef(ids, T, C, 0, w.embed, w.posEmbed);
  for (const L of w.blocks) {
    const xn = norm(x, L.norm1);
    const a = L.attn;
    // Fused q | k | v: three blocks of the same output features.
    const q = a.kind === 'fused' ? proj(xn, C, a.qkv, QD, 0, QD + 2 * KVD) : proj(xn, C, a.q, QD);
    const k = a.kind === 'fused' ? proj(xn, C, a.qkv, KVD, QD, QD + 2 * KVD) : proj(xn, C, a.k, KVD);
    const v = a.kind === 'fused' ? proj(xn, C, a.qkv, KVD, QD + KVD, QD + 2 * KVD) : proj(xn, C, a.v, KVD);
    if (spec.positions === 'rope') {
      ropeRef(q, T, T, 0, QD, 0, NH, HS, spec.ropeTheta);
      ropeRef(k, T, T, 0, KVD, 0, NKV, HS, spec.ropeTheta);
    }
    const att = attentionRef(q, k, v, 1, T, 0, NH, NKV, HS, spec.slidingWindow ?? 0);
    add(x, proj(att, QD, L.o, C));
    const xn2 = norm(x, L.norm2);
    const m = L.mlp;
    let h: Float64Array;
    if (m.kind === 'plain') h = geluNewRef(proj(xn2, C, m.up, FF));
    else if (m.kind === 'gated') h = siluMulRef(proj(xn2, C, m.gate, FF), proj(xn2, C, m.up, FF));
    // Fused gate | up: gate is features [0, FF), up [FF, 2 FF).
    else h = siluMulRef(proj(xn2, C, m.gateUp, FF, 0, 2 * FF), proj(xn2, C, m.gateUp, FF, FF, 2 * FF));
    add(x, proj(h, FF, L.down, C));
  }
  const xf = norm(x, w.normF);
  const targets = ids.map((_, t) => (t + 1 < T ? ids[t + 1]! : -1));
  const { logits, nll } = lmHeadNllRef(xf, C, w.head, V, targets);
  return { logits, nll: Array.from(nll.subarray(0, Math.max(0, T - 1))) };
}
