/**
 * A plain ONNX inference model of the same forward pass the training graph uses (../model.ts
 * appendForward): (B, T) int64 `input_ids` and `labels` -> (B, T) f32 `nll`, the per-position
 * negative log-likelihood of `labels` (and optionally the (B, T, V) `logits`). For running one
 * model under onnxruntime-web's inference builds (wasm or WebGPU execution provider), e.g. the
 * perplexity benchmark (scripts/bench-ppl.ts).
 *
 * With `weights`, parameters are initializers (ORT then constant-folds the weight transposes at
 * session creation); without, they stay graph inputs under their canonical names, like the eval
 * model's. Every label must be a vocabulary id: there is no ignore index here (positions a
 * caller does not want, e.g. the last of a window, get any valid id and are dropped after).
 */
import type { ModelSpec } from '../../io/spec.ts';
import { appendForward, type ParamInfo } from '../model.ts';
import { Graph } from './graph.ts';

export const NLL = 'nll';
export const LOGITS = 'logits';

export interface InferenceModelOptions {
  batch: number; // B
  seqLen: number; // T
  /** Also output (B, T, V) `logits` (tests); default false. */
  logits?: boolean;
}

/**
 * The forward graph with per-position NLL instead of the mean loss. `weights` (f32, every entry of
 * `params`) makes the parameters initializers; omit it to feed them as inputs.
 */
export function buildInferenceModel(
  spec: ModelSpec,
  params: readonly ParamInfo[],
  weights: ReadonlyMap<string, Float32Array> | undefined,
  options: InferenceModelOptions,
): Uint8Array {
  const { batch: B, seqLen: T } = options;
  const V = spec.vocabSize;
  const N = B * T;
  const g = new Graph('dem_inference');
  const has = new Set(params.map((p) => p.name));
  // appendForward reads parameters by name: declared as inputs first, then (with weights) moved
  // to the initializers; the user inputs it declares end up first either way.
  for (const p of params) g.input(p.name, 'float', p.shape);
  appendForward(g, spec, B, T, (n) => has.has(n));
  const paramInputs = g.inputs.splice(0, params.length);
  if (weights) {
    for (const p of paramInputs) {
      const data = weights.get(p.name);
      if (!data) throw new Error(`buildInferenceModel: no weights for '${p.name}'`);
      if (data.length !== p.shape.reduce((a, b) => a * b, 1)) throw new Error(`buildInferenceModel: '${p.name}' has ${data.length} values for [${p.shape.join(', ')}]`);
      g.initializers.push({ name: p.name, type: 'float', shape: [...p.shape], data });
    }
  } else {
    g.inputs.push(...paramInputs);
  }

  // appendForward ends with the mean cross-entropy over (B*T, V) logits and (B*T) labels; that
  // node is replaced by nll = logsumexp(logits) - logits[label], in ops the WebGPU EP has.
  const ce = g.nodes.pop();
  if (!ce || ce.op !== 'SoftmaxCrossEntropyLoss') throw new Error(`buildInferenceModel: expected the forward graph to end in SoftmaxCrossEntropyLoss, got ${ce?.op}`);
  const [logits2d, labels1d] = ce.inputs as [string, string]; // (N, V), (N)
  // onnxruntime-web 1.19.2's WebGPU Split indexes the output shape with the raw `axis`, so a
  // negative axis leaves every output the input's shape (it then fails); the same axis, counted
  // from the front, means the same thing to every runtime.
  for (const n of g.nodes) {
    const axis = n.attrs.axis;
    if (n.op === 'Split' && typeof axis === 'number' && axis < 0) n.attrs.axis = g.shape(n.inputs[0]!).length + axis;
  }
  const [lse] = g.node('ReduceLogSumExp', [logits2d], [{ stem: 'logsumexp', type: 'float', shape: [N, 1] }], { axes: [1], keepdims: 1 });
  const [picked] = g.node('GatherElements', [logits2d, g.reshape(labels1d, [N, 1])], [{ stem: 'label_logit', type: 'float', shape: [N, 1] }], { axis: 1 });
  const nll2d = g.sub(lse!, picked!); // (N, 1)
  g.node('Reshape', [nll2d, g.constI('shape', [B, T])], [{ name: NLL, type: 'float', shape: [B, T] }]);
  g.output(NLL);
  if (options.logits) {
    g.node('Reshape', [logits2d, g.constI('shape', [B, T, V])], [{ name: LOGITS, type: 'float', shape: [B, T, V] }]);
    g.output(LOGITS);
  }
  return g.toModel();
}
