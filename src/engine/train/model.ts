/**
 * The forward graph of a model as ONNX, built once from the ModelSpec: (B, T) int64
 * `input_ids` and `labels` -> scalar mean cross-entropy `loss`. Parameters are graph inputs named
 * by their canonical checkpoint names and bound by role from the architecture table (the
 * family's layout: Conv1D (in, out) or nn.Linear (out, in)); fused projections (q | k | v,
 * gate | up) are one MatMul whose output is Split. The math follows src/engine/model/reference.ts:
 * RoPE frequencies from model/rope.ts (for the graph's fixed T), Gemma's √C embedding scale,
 * (1 + w) norms, soft caps (Tanh) and per-layer sliding windows, q/k RMSNorm (Qwen3 per head,
 * OLMo 2 over the projection), pre- and post-norms.
 */
import { IncompatibleCheckpointError, UnsupportedArchitectureError } from '../errors.ts';
import type { Affine, ModelWeights, WeightRole } from '../io/roles.ts';
import type { ModelSpec } from '../io/spec.ts';
import { bindWeights, forwardWeights } from '../io/weights.ts';
import { ropeFrequencies } from '../model/rope.ts';
import { attentionScale, checkForwardSupport, layerWindow } from '../model/support.ts';
import type { Graph } from './onnx/graph.ts';

/** Labels equal to this are skipped by the loss (padding of a short held-out batch). */
export const IGNORE_INDEX = -100;
export const INPUT_IDS = 'input_ids';
export const LABELS = 'labels';
export const LOSS = 'loss';

export interface ParamInfo {
  name: string;
  shape: number[];
  /** A LoRA factor carries the role of the matrix it adapts. */
  role: WeightRole;
  /** Set on a LoRA factor (train/lora.ts): the adapted weight's canonical name, which factor, and s. */
  lora?: { target: string; factor: 'A' | 'B'; scale: number };
}

/** LoRA factors by the weight they adapt: A (r, in), B (out, r) graph inputs and the scale s. */
export type LoraInputs = ReadonlyMap<string, { a: string; b: string; scale: number }>;

/** The LoRA inputs among `params` (factors are marked by `lora`). */
export function loraInputs(params: readonly ParamInfo[]): LoraInputs {
  const out = new Map<string, { a: string; b: string; scale: number }>();
  for (const p of params) {
    if (!p.lora) continue;
    const e = out.get(p.lora.target) ?? { a: '', b: '', scale: p.lora.scale };
    if (p.lora.factor === 'A') e.a = p.name;
    else e.b = p.name;
    out.set(p.lora.target, e);
  }
  return out;
}

/** The parameters the forward pass reads, in model order, given which optional tensors exist. */
export function modelParams(spec: ModelSpec, has: (name: string) => boolean): ParamInfo[] {
  return forwardWeights(spec)
    .filter((t) => !t.optional || has(t.name))
    .map((t) => ({ name: t.name, shape: t.shape, role: t.role }));
}

/** The parameters' graph-input names bound by role (`has`: which optional tensors exist). */
function graphWeights(spec: ModelSpec, has: (name: string) => boolean): ModelWeights<string> {
  return bindWeights(spec, (t) => (has(t.name) || !t.optional ? t.name : undefined));
}

/** Refuses, by model type and reason, a spec whose forward this graph (the GPU forward's math) does not implement. */
export function checkTrainable(spec: ModelSpec): void {
  try {
    checkForwardSupport(spec, graphWeights(spec, () => true));
  } catch (error) {
    if (error instanceof IncompatibleCheckpointError) throw new UnsupportedArchitectureError(`fine-tuning: ${error.message}`);
    throw error;
  }
}

/** HF rotate-half RoPE tables for positions 0..T-1: cos/sin (T, HS) and the (HS, HS) rotation R with x @ R = rotate_half(x). */
function ropeTables(spec: ModelSpec, T: number): { cos: Float32Array; sin: Float32Array; rot: Float32Array } {
  const HS = spec.headDim;
  const half = HS / 2;
  const { inv, scale } = ropeFrequencies(spec, T);
  const cos = new Float32Array(T * HS);
  const sin = new Float32Array(T * HS);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < HS; d++) {
      const invFreq = inv[d % half]!;
      cos[t * HS + d] = Math.cos(t * invFreq) * scale;
      sin[t * HS + d] = Math.sin(t * invFreq) * scale;
    }
  }
  const rot = new Float32Array(HS * HS);
  for (let d = 0; d < half; d++) {
    rot[(d + half) * HS + d] = -1; // out[d] = -x[d + half]
    rot[d * HS + d + half] = 1; // out[d + half] = x[d]
  }
  return { cos, sin, rot };
}

/**
 * Appends the forward pass to `g` (parameter inputs must already be declared under their
 * canonical names; `has` tells which optional ones exist) and returns the loss value's name.
 * `lora`: the projections whose weight it names also add s·(x·Aᵀ)·Bᵀ.
 */
export function appendForward(g: Graph, spec: ModelSpec, B: number, T: number, has: (name: string) => boolean, lora: LoraInputs = new Map()): string {
  checkTrainable(spec);
  const { vocabSize: V, numHeads: NH, numKvHeads: NKV, headDim: HS, intermediateSize: FF } = spec;
  const QD = NH * HS;
  const KVD = NKV * HS;
  const rep = NH / NKV;

  const ids = g.input(INPUT_IDS, 'int64', [B, T]);
  const labels = g.input(LABELS, 'int64', [B, T]);

  // Causal (and sliding-window) additive mask for the grouped layout: row r*T + i is query i; one per window size.
  const masks = new Map<number, string>();
  const maskFor = (window: number): string => {
    let name = masks.get(window);
    if (name === undefined) {
      const mask = new Float32Array(rep * T * T);
      for (let r = 0; r < rep; r++) {
        for (let i = 0; i < T; i++) {
          for (let j = 0; j < T; j++) {
            const visible = j <= i && (window === 0 || i - j < window);
            mask[(r * T + i) * T + j] = visible ? 0 : -1e9;
          }
        }
      }
      name = g.constF(window ? `window_mask_${window}` : 'causal_mask', mask, [rep * T, T]);
      masks.set(window, name);
    }
    return name;
  };
  const scaleC = g.constF('attn_scale', [attentionScale(spec)], []);
  // c·tanh(z / c): Gemma 2's soft caps on the attention scores and the final logits.
  const softcap = (z: string, cap: number | undefined, stem: string): string => {
    if (cap === undefined) return z;
    return g.mul(g.tanh(g.mul(z, g.constF(`${stem}_inv_cap`, [1 / cap], []))), g.constF(`${stem}_cap`, [cap], []));
  };
  const rope = spec.positions === 'rope' ? ropeTables(spec, T) : null;
  const cosC = rope ? g.constF('rope_cos', rope.cos, [T, HS]) : '';
  const sinC = rope ? g.constF('rope_sin', rope.sin, [T, HS]) : '';
  const rotC = rope ? g.constF('rope_rot', rope.rot, [HS, HS]) : '';
  const applyRope = (x: string): string => (rope ? g.add(g.mul(x, cosC), g.mul(g.matmul(x, rotC), sinC)) : x);

  // Heads are grouped by the KV head they share: queries (B, NKV, rep*T, HS) against K/V (B, NKV, T, HS).
  const attention = (q: string, k: string, v: string, window: number): string => {
    let q5 = g.transpose(g.reshape(q, [B, T, NKV, rep, HS]), [0, 2, 3, 1, 4]); // (B, NKV, rep, T, HS)
    q5 = applyRope(q5);
    const qg = g.reshape(q5, [B, NKV, rep * T, HS]);
    const k4 = applyRope(g.transpose(g.reshape(k, [B, T, NKV, HS]), [0, 2, 1, 3])); // (B, NKV, T, HS)
    const v4 = g.transpose(g.reshape(v, [B, T, NKV, HS]), [0, 2, 1, 3]);
    const scores = g.add(softcap(g.mul(g.matmul(qg, g.transpose(k4, [0, 1, 3, 2])), scaleC), spec.attnSoftcap, 'attn'), maskFor(window)); // (B, NKV, rep*T, T)
    const o = g.matmul(g.softmax(scores), v4); // (B, NKV, rep*T, HS)
    const o5 = g.transpose(g.reshape(o, [B, NKV, rep, T, HS]), [0, 3, 1, 2, 4]); // (B, T, NKV, rep, HS)
    return g.reshape(o5, [B, T, QD]);
  };
  const w = graphWeights(spec, has);
  const withBias = (y: string, bias: string | undefined): string => (bias !== undefined ? g.add(y, bias) : y);
  // nn.Linear weight (out, in): y = x W^T (+ b); Conv1D weight (in, out): y = x W (+ b).
  // A LoRA on W adds s·(x Aᵀ) Bᵀ with A (r, in), B (out, r) in either layout.
  const project = (x: string, l: Affine<string>): string => {
    const y = g.matmul(x, w.layout === 'linear' ? g.transpose(l.w, [1, 0]) : l.w);
    const f = lora.get(l.w);
    if (f === undefined) return withBias(y, l.b);
    const low = g.matmul(g.matmul(x, g.transpose(f.a, [1, 0])), g.transpose(f.b, [1, 0]));
    return withBias(g.add(y, g.mul(low, g.constF(`${l.w}_lora_scale`, [f.scale], []))), l.b);
  };
  const one = spec.normPlusOne ? g.constF('one', [1], []) : '';
  const norm = (x: string, n: Affine<string>): string =>
    spec.norm === 'layernorm' ? g.layerNorm(x, n.w, n.b!, spec.normEps) : g.rmsNorm(x, spec.normPlusOne ? g.add(n.w, one) : n.w, spec.normEps);
  // RMSNorm of a (B, T, G*W) projection over groups of W features (Qwen3: per head; OLMo 2: G = 1).
  const groupNorm = (x: string, scale: string, G: number, W: number): string => g.reshape(g.rmsNorm(g.reshape(x, [B, T, G, W]), scale, spec.normEps), [B, T, G * W]);

  const pos = w.posEmbed !== undefined ? g.constI('positions', [...Array(T).keys()]) : undefined;
  let x = g.gather(w.embed, ids); // (B, T, C)
  if (spec.embedScale !== undefined) x = g.mul(x, g.constF('embed_scale', [spec.embedScale], []));
  if (pos !== undefined) x = g.add(x, g.gather(w.posEmbed!, pos));
  for (const [i, L] of w.blocks.entries()) {
    const xn = L.norm1 ? norm(x, L.norm1) : x;
    const a = L.attn;
    const [q0, k0, v] = a.kind === 'fused' ? (g.split(project(xn, a.qkv), -1, [QD, KVD, KVD]) as [string, string, string]) : [project(xn, a.q), project(xn, a.k), project(xn, a.v)];
    let [q, k] = [q0, k0];
    if (L.qNorm && L.kNorm) {
      const perHead = spec.qkNorm === 'head';
      q = groupNorm(q, L.qNorm, perHead ? NH : 1, perHead ? HS : QD);
      k = groupNorm(k, L.kNorm, perHead ? NKV : 1, perHead ? HS : KVD);
    }
    const attnOut = project(attention(q, k, v, layerWindow(spec, i)), L.o);
    x = g.add(x, L.attnPostNorm ? norm(attnOut, L.attnPostNorm) : attnOut);
    const xn2 = L.norm2 ? norm(x, L.norm2) : x;
    const m = L.mlp;
    let h: string;
    if (m.kind === 'plain') h = g.fastGelu(project(xn2, m.up));
    else {
      const [gate, up] = m.kind === 'gated' ? [project(xn2, m.gate), project(xn2, m.up)] : (g.split(project(xn2, m.gateUp), -1, [FF, FF]) as [string, string]);
      // SiLU(gate) * up, or the tanh GELU's GeGLU, (B, T, FF).
      h = g.mul(spec.activation === 'silu' ? g.mul(gate, g.sigmoid(gate)) : g.fastGelu(gate), up);
    }
    const mlpOut = project(h, L.down);
    x = g.add(x, L.mlpPostNorm ? norm(mlpOut, L.mlpPostNorm) : mlpOut);
  }
  const xf = norm(x, w.normF);
  const logits = softcap(g.matmul(xf, g.transpose(w.head, [1, 0])), spec.finalSoftcap, 'final'); // (B, T, V)
  return g.crossEntropy(g.reshape(logits, [B * T, V]), g.reshape(labels, [B * T]), IGNORE_INDEX, LOSS);
}
