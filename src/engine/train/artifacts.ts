/**
 * The four artifacts onnxruntime-web 1.19.2's training API loads, generated in-process (its
 * Python generator is not available to a page): training model, eval model, optimizer model,
 * checkpoint. The contracts each must meet are stated where each is built below.
 */
import onnxProto from 'onnx-proto';
import type { ModelSpec } from '../io/spec.ts';
import { writeCheckpointState, type StateTensor } from './checkpointState.ts';
import { appendForward, loraInputs, type ParamInfo } from './model.ts';
import { appendBackward } from './onnx/autodiff.ts';
import { Graph, MS_DOMAIN, ONNX_OPSET } from './onnx/graph.ts';

const { onnx } = onnxProto;

export const LAZY_RESET_GRAD = 'lazy_reset_grad';
export const gradBufferName = (p: string): string => `${p}_grad.accumulation.buffer`;
export const gradOutName = (p: string): string => `${p}_grad.accumulation.out`;

export interface GraphShape {
  batch: number; // B
  seqLen: number; // T
}

/**
 * Forward graph with every parameter (trainable or frozen) a graph input, in `params` order,
 * after the user inputs `input_ids`, `labels`; LoRA factors among `params` adapt their targets.
 */
function forwardGraph(name: string, spec: ModelSpec, params: readonly ParamInfo[], shape: GraphShape): { g: Graph; loss: string } {
  const g = new Graph(name);
  const has = new Set(params.map((p) => p.name));
  // appendForward reads parameters by name, so they are declared first; the user inputs it
  // declares are then moved to the front.
  for (const p of params) g.input(p.name, 'float', p.shape);
  const loss = appendForward(g, spec, shape.batch, shape.seqLen, (n) => has.has(n), loraInputs(params));
  const user = g.inputs.splice(params.length);
  g.inputs.unshift(...user);
  return { g, loss };
}

/** Eval model: the forward graph; its single output is named like the training model's first (`loss`). */
export function buildEvalModel(spec: ModelSpec, params: readonly ParamInfo[], shape: GraphShape): Uint8Array {
  const { g, loss } = forwardGraph('dem_eval', spec, params, shape);
  g.output(loss);
  return g.toModel();
}

/**
 * Training model: forward + backward; for each trainable P an input `P_grad.accumulation.buffer`
 * and InPlaceAccumulatorV2(buffer, dP, lazy_reset_grad) -> `P_grad.accumulation.out` (bool[1]).
 */
export function buildTrainingModel(spec: ModelSpec, params: readonly ParamInfo[], trainable: ReadonlySet<string>, shape: GraphShape): Uint8Array {
  const { g, loss } = forwardGraph('dem_train', spec, params, shape);
  const wrt = params.filter((p) => trainable.has(p.name));
  const grads = appendBackward(g, loss, wrt.map((p) => p.name));
  g.output(loss);
  for (const p of wrt) g.input(gradBufferName(p.name), 'float', p.shape);
  const reset = g.input(LAZY_RESET_GRAD, 'bool', [1]);
  for (const p of wrt) {
    const [out] = g.node('InPlaceAccumulatorV2', [gradBufferName(p.name), grads.get(p.name)!, reset], [{ name: gradOutName(p.name), type: 'bool', shape: [1] }], {}, MS_DOMAIN);
    g.output(out!);
  }
  return g.toModel();
}

export interface AdamWSettings {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Cosine decay ends at lr * minLrRatio. */
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

export const DEFAULT_ADAMW: Omit<AdamWSettings, 'lr' | 'warmupSteps' | 'totalSteps'> = { minLrRatio: 0.1, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };

/**
 * Learning rate of optimizer step s = 1, 2, ... (onnxruntime feeds step count + 1): linear
 * warm-up over `warmupSteps`, then cosine decay to lr * minLrRatio at `totalSteps`. The optimizer
 * graph computes the same in float32; scripts/torch_train_reference.py mirrors it.
 */
export function learningRate(s: number, a: AdamWSettings): number {
  const invW = a.warmupSteps > 0 ? 1 / a.warmupSteps : 1e30;
  const p = Math.min(1, Math.max(0, (s - a.warmupSteps) / Math.max(1, a.totalSteps - a.warmupSteps)));
  const decay = a.minLrRatio + (1 - a.minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * p));
  return a.lr * Math.min(s * invW, decay);
}

/**
 * Optimizer model: inputs `learning_rate` f[1] (ignored: the web API always feeds 1e-3), `step`
 * i64[1], then seq(tensor(float)) params/gradients/moments; one AdamWOptimizer (adam_mode 0 =
 * torch.optim.AdamW) with the schedule of `learningRate` computed from `step`.
 */
export function buildOptimizerModel(a: AdamWSettings): Uint8Array {
  const T = onnx.TensorProto.DataType;
  const A = onnx.AttributeProto.AttributeType;
  const f1 = { tensorType: { elemType: T.FLOAT, shape: { dim: [{ dimValue: 1 }] } } };
  const seq = { sequenceType: { elemType: { tensorType: { elemType: T.FLOAT } } } };
  const scalar = (name: string, v: number): onnxProto.onnx.ITensorProto => ({ name, dataType: T.FLOAT, dims: [1], floatData: [v] });
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const node = (op: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []): void => {
    nodes.push({ name: `${op}_${nodes.length}`, opType: op, input, output: [output], attribute });
  };
  const invW = a.warmupSteps > 0 ? 1 / a.warmupSteps : 1e30;
  const span = Math.max(1, a.totalSteps - a.warmupSteps);
  node('Cast', ['step'], 's', [{ name: 'to', type: A.INT, i: T.FLOAT }]);
  node('Mul', ['s', 'c_invw'], 'warm');
  node('Sub', ['s', 'c_w'], 's_w');
  node('Mul', ['s_w', 'c_invspan'], 'p_raw');
  node('Clip', ['p_raw', 'c_zero', 'c_one'], 'p');
  node('Mul', ['p', 'c_pi'], 'angle');
  node('Cos', ['angle'], 'cosv');
  node('Mul', ['cosv', 'c_half_amp'], 'cos_scaled');
  node('Add', ['cos_scaled', 'c_mid'], 'decay');
  node('Min', ['warm', 'decay'], 'factor');
  node('Mul', ['factor', 'c_lr'], 'lr');
  nodes.push({
    name: 'AdamWOptimizer',
    opType: 'AdamWOptimizer',
    domain: MS_DOMAIN,
    input: ['lr', 'step', 'params', 'gradients', 'first_order_moments', 'second_order_moments'],
    output: ['updated_flag'],
    attribute: [
      { name: 'alpha', type: A.FLOAT, f: a.beta1 },
      { name: 'beta', type: A.FLOAT, f: a.beta2 },
      { name: 'epsilon', type: A.FLOAT, f: a.epsilon },
      { name: 'weight_decay', type: A.FLOAT, f: a.weightDecay },
      { name: 'correct_bias', type: A.INT, i: 1 },
      { name: 'adam_mode', type: A.INT, i: 0 },
    ],
  });
  const amp = (1 - a.minLrRatio) * 0.5;
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'dem-studio',
    opsetImport: [{ domain: '', version: ONNX_OPSET }, { domain: MS_DOMAIN, version: 1 }],
    graph: {
      name: 'dem_optimizer',
      node: nodes,
      input: [
        { name: 'learning_rate', type: f1 },
        { name: 'step', type: { tensorType: { elemType: T.INT64, shape: { dim: [{ dimValue: 1 }] } } } },
        { name: 'params', type: seq },
        { name: 'gradients', type: seq },
        { name: 'first_order_moments', type: seq },
        { name: 'second_order_moments', type: seq },
      ],
      output: [{ name: 'updated_flag', type: { tensorType: { elemType: T.BOOL, shape: { dim: [{ dimValue: 1 }] } } } }],
      initializer: [
        scalar('c_invw', invW),
        scalar('c_w', a.warmupSteps),
        scalar('c_invspan', 1 / span),
        { name: 'c_zero', dataType: T.FLOAT, dims: [], floatData: [0] },
        { name: 'c_one', dataType: T.FLOAT, dims: [], floatData: [1] },
        scalar('c_pi', Math.PI),
        scalar('c_half_amp', amp),
        scalar('c_mid', a.minLrRatio + amp),
        scalar('c_lr', a.lr),
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface TrainingArtifacts {
  trainModel: Uint8Array;
  evalModel: Uint8Array;
  optimizerModel: Uint8Array;
  checkpoint: Uint8Array;
  /** All parameters in training-graph input order. */
  params: ParamInfo[];
  /** The trainable subset, in the same order (= getContiguousParameters(true) layout). */
  trainable: ParamInfo[];
}

/** All four artifacts from f32 weights (every entry of `params` must be in `weights`). */
export function buildArtifacts(
  spec: ModelSpec,
  params: readonly ParamInfo[],
  weights: ReadonlyMap<string, Float32Array>,
  trainable: ReadonlySet<string>,
  shape: GraphShape,
  adamw: AdamWSettings,
): TrainingArtifacts {
  const state = (p: ParamInfo): StateTensor => ({ name: p.name, shape: p.shape, data: weights.get(p.name)! });
  const train = params.filter((p) => trainable.has(p.name));
  return {
    trainModel: buildTrainingModel(spec, params, trainable, shape),
    evalModel: buildEvalModel(spec, params, shape),
    optimizerModel: buildOptimizerModel(adamw),
    checkpoint: writeCheckpointState(train.map(state), params.filter((p) => !trainable.has(p.name)).map(state)),
    params: [...params],
    trainable: train,
  };
}

/**
 * Forward + backward as a plain inference model whose outputs are `loss` and each trainable
 * parameter's gradient `P_grad` (the same autodiff the training model uses): for gradient checks.
 */
export function buildGradientModel(spec: ModelSpec, params: readonly ParamInfo[], trainable: ReadonlySet<string>, shape: GraphShape): Uint8Array {
  const { g, loss } = forwardGraph('dem_grad', spec, params, shape);
  const wrt = params.filter((p) => trainable.has(p.name)).map((p) => p.name);
  const grads = appendBackward(g, loss, wrt);
  g.output(loss);
  for (const p of wrt) {
    // Identity gives the output a stable name (the summed gradient may be any intermediate).
    const [out] = g.node('Identity', [grads.get(p)!], [{ name: `${p}_grad`, type: 'float', shape: g.shape(p) }]);
    g.output(out!);
  }
  return g.toModel();
}
