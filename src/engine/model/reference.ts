import { IncompatibleCheckpointError, InputError } from '../errors.ts';
import type { Affine } from '../io/roles.ts';
import type { ModelSpec } from '../io/spec.ts';
import { bindWeights } from '../io/weights.ts';
import { geluMulRef, geluNewRef, siluMulRef } from '../kernels/activation.ref.ts';
import { attentionRef } from '../kernels/attention.ref.ts';
import { embeddingRef } from '../kernels/embedding.ref.ts';
import { headNormRef } from '../kernels/headnorm.ref.ts';
import { layerNormRef } from '../kernels/layernorm.ref.ts';
import { lmHeadNllRef } from '../kernels/lmhead_nll.ref.ts';
import { matmulRef } from '../kernels/matmul.ref.ts';
import { rmsNormRef } from '../kernels/rmsnorm.ref.ts';
import { ropeRef } from '../kernels/rope.ref.ts';
import { ropeFrequencies } from './rope.ts';
import { attentionScale, checkForwardSupport, layerWindow } from './support.ts';

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
    spec.norm === 'layernorm' ? layerNormRef(x, C, n.w, n.b!, spec.normEps) : rmsNormRef(x, C, n.w, spec.normEps, spec.normPlusOne);
  // Output features [n0, n0 + N) of a projection with NW output features, (T, K) -> (T, N).
  const proj = (x: Float64Array, K: number, l: Affine<Float64Array>, N: number, n0 = 0, NW = n0 + N): Float64Array => matmulRef(x, T, K, l.w, w.layout, N, l.b, n0, NW);
  // A sub-block's output y through its post-norm (if any) into the residual stream x.
  const residual = (x: Float64Array, y: Float64Array, n: Affine<Float64Array> | undefined): void => add(x, n ? norm(y, n) : y);
  const freqs = spec.positions === 'rope' ? ropeFrequencies(spec, T) : undefined;

  const x = embeddingRef(ids, T, C, 0, w.embed, w.posEmbed, spec.embedScale ?? 1);
  for (const [i, L] of w.blocks.entries()) {
    const xn = L.norm1 ? norm(x, L.norm1) : x;
    const a = L.attn;
    // Fused q | k | v: three blocks of the same output features.
    const q = a.kind === 'fused' ? proj(xn, C, a.qkv, QD, 0, QD + 2 * KVD) : proj(xn, C, a.q, QD);
    const k = a.kind === 'fused' ? proj(xn, C, a.qkv, KVD, QD, QD + 2 * KVD) : proj(xn, C, a.k, KVD);
    const v = a.kind === 'fused' ? proj(xn, C, a.qkv, KVD, QD + KVD, QD + 2 * KVD) : proj(xn, C, a.v, KVD);
    if (L.qNorm && L.kNorm) {
      const perHead = spec.qkNorm === 'head';
      headNormRef(q, T, QD, 0, perHead ? NH : 1, perHead ? HS : QD, L.qNorm, spec.normEps);
      headNormRef(k, T, KVD, 0, perHead ? NKV : 1, perHead ? HS : KVD, L.kNorm, spec.normEps);
    }
    if (freqs) {
      ropeRef(q, T, T, 0, QD, 0, NH, HS, freqs);
      ropeRef(k, T, T, 0, KVD, 0, NKV, HS, freqs);
    }
    const att = attentionRef(q, k, v, 1, T, 0, NH, NKV, HS, layerWindow(spec, i), attentionScale(spec), spec.attnSoftcap ?? 0);
    residual(x, proj(att, QD, L.o, C), L.attnPostNorm);
    const xn2 = L.norm2 ? norm(x, L.norm2) : x;
    const m = L.mlp;
    const act = spec.activation === 'silu' ? siluMulRef : geluMulRef;
    let h: Float64Array;
    if (m.kind === 'plain') h = geluNewRef(proj(xn2, C, m.up, FF));
    else if (m.kind === 'gated') h = act(proj(xn2, C, m.gate, FF), proj(xn2, C, m.up, FF));
    // Fused gate | up: gate is features [0, FF), up [FF, 2 FF).
    else h = act(proj(xn2, C, m.gateUp, FF, 0, 2 * FF), proj(xn2, C, m.gateUp, FF, FF, 2 * FF));
    residual(x, proj(h, FF, L.down, C), L.mlpPostNorm);
  }
  const xf = norm(x, w.normF);
  const targets = ids.map((_, t) => (t + 1 < T ? ids[t + 1]! : -1));
  const { logits, nll } = lmHeadNllRef(xf, C, w.head, V, targets, spec.finalSoftcap ?? 0);
  return { logits, nll: Array.from(nll.subarray(0, Math.max(0, T - 1))) };
}
