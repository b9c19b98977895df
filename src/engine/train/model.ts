/**
 * The forward graph of a GPT-2 or Llama-family model as ONNX, built once from the ModelSpec:
 * (B, T) int64 `input_ids` and `labels` -> scalar mean cross-entropy `loss`. Parameters are
 * graph inputs named by their canonical checkpoint names (GPT-2 Conv1D weights (in, out),
 * Llama nn.Linear weights (out, in)); the math follows src/engine/model/reference.ts.
 */
import { UnsupportedArchitectureError } from '../errors.ts';
import type { ModelSpec } from '../io/spec.ts';
import { forwardTensors, headName } from '../model/names.ts';
import type { Graph } from './onnx/graph.ts';

/** Labels equal to this are skipped by the loss (padding of a short held-out batch). */
export const IGNORE_INDEX = -100;
export const INPUT_IDS = 'input_ids';
export const LABELS = 'labels';
export const LOSS = 'loss';

export interface ParamInfo {
  name: string;
  shape: number[];
}

/** The parameters the forward pass reads, in model order, given which optional tensors exist. */
export function modelParams(spec: ModelSpec, has: (name: string) => boolean): ParamInfo[] {
  return forwardTensors(spec)
    .filter((t) => !t.optional || has(t.name))
    .map((t) => ({ name: t.name, shape: t.shape }));
}

export function checkTrainable(spec: ModelSpec): void {
  const want = spec.family === 'gpt2'
    ? { norm: 'layernorm', activation: 'gelu_new', positions: 'learned' }
    : spec.family === 'llama'
      ? { norm: 'rmsnorm', activation: 'silu', positions: 'rope' }
      : null;
  if (!want) throw new UnsupportedArchitectureError(`fine-tuning supports GPT-2 and Llama-family models, not '${String(spec.modelType)}'`);
  const got = { norm: spec.norm, activation: spec.activation, positions: spec.positions };
  for (const k of Object.keys(want) as (keyof typeof want)[]) {
    if (got[k] !== want[k]) throw new UnsupportedArchitectureError(`fine-tuning '${spec.modelType}' supports ${k} '${want[k]}', this model has '${got[k]}'`);
  }
  if (spec.headDim % 2 !== 0 && spec.positions === 'rope') throw new UnsupportedArchitectureError(`RoPE needs an even head_dim, got ${spec.headDim}`);
}

/** HF rotate-half RoPE tables for positions 0..T-1: cos/sin (T, HS) and the (HS, HS) rotation R with x @ R = rotate_half(x). */
function ropeTables(T: number, HS: number, theta: number): { cos: Float32Array; sin: Float32Array; rot: Float32Array } {
  const half = HS / 2;
  const cos = new Float32Array(T * HS);
  const sin = new Float32Array(T * HS);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < HS; d++) {
      const invFreq = 1 / Math.pow(theta, (2 * (d % half)) / HS);
      cos[t * HS + d] = Math.cos(t * invFreq);
      sin[t * HS + d] = Math.sin(t * invFreq);
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
 */
export function appendForward(g: Graph, spec: ModelSpec, B: number, T: number, has: (name: string) => boolean): string {
  checkTrainable(spec);
  const { vocabSize: V, hiddenSize: C, numHeads: NH, numKvHeads: NKV, headDim: HS } = spec;
  const QD = NH * HS;
  const rep = NH / NKV;
  const gpt2 = spec.family === 'gpt2';

  const ids = g.input(INPUT_IDS, 'int64', [B, T]);
  const labels = g.input(LABELS, 'int64', [B, T]);

  // Causal (and sliding-window) additive mask for the grouped layout: row r*T + i is query i.
  const mask = new Float32Array(rep * T * T);
  for (let r = 0; r < rep; r++) {
    for (let i = 0; i < T; i++) {
      for (let j = 0; j < T; j++) {
        const visible = j <= i && (spec.slidingWindow === undefined || i - j < spec.slidingWindow);
        mask[(r * T + i) * T + j] = visible ? 0 : -1e9;
      }
    }
  }
  const maskC = g.constF('causal_mask', mask, [rep * T, T]);
  const scaleC = g.constF('attn_scale', [1 / Math.sqrt(HS)], []);
  const rope = spec.positions === 'rope' ? ropeTables(T, HS, spec.ropeTheta) : null;
  const cosC = rope ? g.constF('rope_cos', rope.cos, [T, HS]) : '';
  const sinC = rope ? g.constF('rope_sin', rope.sin, [T, HS]) : '';
  const rotC = rope ? g.constF('rope_rot', rope.rot, [HS, HS]) : '';
  const applyRope = (x: string): string => (rope ? g.add(g.mul(x, cosC), g.mul(g.matmul(x, rotC), sinC)) : x);

  // Heads are grouped by the KV head they share: queries (B, NKV, rep*T, HS) against K/V (B, NKV, T, HS).
  const attention = (q: string, k: string, v: string): string => {
    let q5 = g.transpose(g.reshape(q, [B, T, NKV, rep, HS]), [0, 2, 3, 1, 4]); // (B, NKV, rep, T, HS)
    q5 = applyRope(q5);
    const qg = g.reshape(q5, [B, NKV, rep * T, HS]);
    const k4 = applyRope(g.transpose(g.reshape(k, [B, T, NKV, HS]), [0, 2, 1, 3])); // (B, NKV, T, HS)
    const v4 = g.transpose(g.reshape(v, [B, T, NKV, HS]), [0, 2, 1, 3]);
    const scores = g.add(g.mul(g.matmul(qg, g.transpose(k4, [0, 1, 3, 2])), scaleC), maskC); // (B, NKV, rep*T, T)
    const o = g.matmul(g.softmax(scores), v4); // (B, NKV, rep*T, HS)
    const o5 = g.transpose(g.reshape(o, [B, NKV, rep, T, HS]), [0, 3, 1, 2, 4]); // (B, T, NKV, rep, HS)
    return g.reshape(o5, [B, T, QD]);
  };
  const withBias = (y: string, bias: string): string => (has(bias) ? g.add(y, bias) : y);
  // nn.Linear weight (out, in): y = x W^T (+ b).
  const linear = (x: string, w: string, bias: string): string => withBias(g.matmul(x, g.transpose(w, [1, 0])), bias);
  // Conv1D weight (in, out): y = x W + b.
  const conv1d = (x: string, w: string, bias: string): string => withBias(g.matmul(x, w), bias);

  let x: string;
  if (gpt2) {
    const pos = g.constI('positions', [...Array(T).keys()]);
    x = g.add(g.gather('wte.weight', ids), g.gather('wpe.weight', pos)); // (B, T, C)
  } else {
    x = g.gather('model.embed_tokens.weight', ids);
  }
  for (let i = 0; i < spec.numLayers; i++) {
    if (gpt2) {
      const h = `h.${i}`;
      const xn = g.layerNorm(x, `${h}.ln_1.weight`, `${h}.ln_1.bias`, spec.normEps);
      const [q, k, v] = g.split(conv1d(xn, `${h}.attn.c_attn.weight`, `${h}.attn.c_attn.bias`), -1, [C, C, C]) as [string, string, string];
      x = g.add(x, conv1d(attention(q, k, v), `${h}.attn.c_proj.weight`, `${h}.attn.c_proj.bias`));
      const xn2 = g.layerNorm(x, `${h}.ln_2.weight`, `${h}.ln_2.bias`, spec.normEps);
      const ff = g.fastGelu(conv1d(xn2, `${h}.mlp.c_fc.weight`, `${h}.mlp.c_fc.bias`));
      x = g.add(x, conv1d(ff, `${h}.mlp.c_proj.weight`, `${h}.mlp.c_proj.bias`));
    } else {
      const l = `model.layers.${i}`;
      const xn = g.rmsNorm(x, `${l}.input_layernorm.weight`, spec.normEps);
      const proj = (p: string): string => linear(xn, `${l}.self_attn.${p}.weight`, `${l}.self_attn.${p}.bias`);
      const att = attention(proj('q_proj'), proj('k_proj'), proj('v_proj'));
      x = g.add(x, linear(att, `${l}.self_attn.o_proj.weight`, `${l}.self_attn.o_proj.bias`));
      const xn2 = g.rmsNorm(x, `${l}.post_attention_layernorm.weight`, spec.normEps);
      const gate = linear(xn2, `${l}.mlp.gate_proj.weight`, `${l}.mlp.gate_proj.bias`);
      const up = linear(xn2, `${l}.mlp.up_proj.weight`, `${l}.mlp.up_proj.bias`);
      const act = g.mul(g.mul(gate, g.sigmoid(gate)), up); // SiLU(gate) * up, (B, T, FF)
      x = g.add(x, linear(act, `${l}.mlp.down_proj.weight`, `${l}.mlp.down_proj.bias`));
    }
  }
  const xf = gpt2 ? g.layerNorm(x, 'ln_f.weight', 'ln_f.bias', spec.normEps) : g.rmsNorm(x, 'model.norm.weight', spec.normEps);
  const logits = g.matmul(xf, g.transpose(headName(spec, has), [1, 0])); // (B, T, V)
  return g.crossEntropy(g.reshape(logits, [B * T, V]), g.reshape(labels, [B * T]), IGNORE_INDEX, LOSS);
}
