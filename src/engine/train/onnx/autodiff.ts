/**
 * Reverse-mode autodiff over the ops the forward builder emits. Gradient rules use plain ONNX
 * ops (Tanh's: (1 - y²)·dy) plus the com.microsoft gradient kernels the onnxruntime-web 1.19.2
 * training wasm has:
 * LayerNormalizationGrad, SimplifiedLayerNormalizationGrad,
 * SoftmaxCrossEntropyLossGrad, SoftmaxGrad_13, FastGeluGrad, SigmoidGrad, GatherGrad.
 */
import { MS_DOMAIN, type Graph, type Node } from './graph.ts';

/** `need[i]`: whether input i needs a gradient (rules skip the work for constants). */
type Rule = (g: Graph, node: Node, dOut: (string | undefined)[], need: boolean[]) => (string | undefined)[];

/** Sums `grad` (shape of a broadcast result) down to `target`'s shape. */
function reduceTo(g: Graph, grad: string, target: number[]): string {
  const s = g.shape(grad);
  if (s.length === target.length && s.every((d, i) => d === target[i])) return grad;
  const pad = s.length - target.length;
  const axes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const t = i < pad ? 1 : target[i - pad]!;
    if (t === 1 && s[i] !== 1) axes.push(i);
  }
  const kept = s.map((d, i) => (axes.includes(i) ? 1 : d));
  const [summed] = g.node('ReduceSum', [grad, g.constI('axes', axes)], [{ stem: 'ReduceSum', type: 'float', shape: kept }], { keepdims: 1 });
  return g.reshape(summed!, target);
}

function swapLast(g: Graph, x: string): string {
  const r = g.shape(x).length;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return g.transpose(x, perm);
}

const inShape = (g: Graph, node: Node, i: number): number[] => g.shape(node.inputs[i]!);

const RULES: Record<string, Rule> = {
  Add: (g, n, [dy], need) => [need[0] ? reduceTo(g, dy!, inShape(g, n, 0)) : undefined, need[1] ? reduceTo(g, dy!, inShape(g, n, 1)) : undefined],
  Sub: (g, n, [dy], need) => [need[0] ? reduceTo(g, dy!, inShape(g, n, 0)) : undefined, need[1] ? g.neg(reduceTo(g, dy!, inShape(g, n, 1))) : undefined],
  Mul: (g, n, [dy], need) => [
    need[0] ? reduceTo(g, g.mul(dy!, n.inputs[1]!), inShape(g, n, 0)) : undefined,
    need[1] ? reduceTo(g, g.mul(dy!, n.inputs[0]!), inShape(g, n, 1)) : undefined,
  ],
  Neg: (g, _n, [dy]) => [g.neg(dy!)],
  MatMul: (g, n, [dy], need) => {
    const [a, b] = n.inputs as [string, string];
    const sa = g.shape(a);
    const sb = g.shape(b);
    const da = need[0] ? reduceTo(g, g.matmul(dy!, swapLast(g, b)), sa) : undefined;
    let db: string | undefined;
    if (!need[1]) {
      db = undefined;
    } else if (sa.length === sb.length) {
      db = g.matmul(swapLast(g, a), dy!);
    } else if (sb.length === 2) {
      // (..., M, K) x (K, N): the weight's gradient sums over every leading row.
      const K = sb[0]!;
      const N = sb[1]!;
      const a2 = g.reshape(a, [numelRows(sa), K]);
      const d2 = g.reshape(dy!, [numelRows(sa), N]);
      db = g.matmul(g.transpose(a2, [1, 0]), d2);
    } else {
      throw new Error(`MatMul gradient: unsupported ranks ${sa.length} x ${sb.length}`);
    }
    return [da, db];
  },
  Transpose: (g, n, [dy]) => {
    const perm = n.attrs.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [g.transpose(dy!, inv)];
  },
  Reshape: (g, n, [dy]) => [g.reshape(dy!, inShape(g, n, 0)), undefined],
  Gather: (g, n, [dy]) => {
    const shape = g.constI('gather_shape', inShape(g, n, 0));
    const [dx] = g.node('GatherGrad', [shape, n.inputs[1]!, dy!], [{ stem: 'GatherGrad', type: 'float', shape: inShape(g, n, 0) }], { axis: n.attrs.axis as number }, MS_DOMAIN);
    return [dx, undefined];
  },
  LayerNormalization: (g, n, [dy]) => {
    const [x, scale] = n.inputs as [string, string, string];
    const [, mean, invstd] = n.outputs as [string, string, string];
    const outs = g.node('LayerNormalizationGrad', [dy!, x, scale, mean, invstd], [
      { stem: 'dLN_x', type: 'float', shape: g.shape(x) },
      { stem: 'dLN_scale', type: 'float', shape: g.shape(scale) },
      { stem: 'dLN_bias', type: 'float', shape: g.shape(scale) },
    ], { axis: -1 }, MS_DOMAIN);
    return outs;
  },
  SimplifiedLayerNormalization: (g, n, [dy]) => {
    const [x, scale] = n.inputs as [string, string];
    const invstd = n.outputs[1]!;
    return g.node('SimplifiedLayerNormalizationGrad', [dy!, x, scale, invstd], [
      { stem: 'dRMS_x', type: 'float', shape: g.shape(x) },
      { stem: 'dRMS_scale', type: 'float', shape: g.shape(scale) },
    ], { axis: -1 }, MS_DOMAIN);
  },
  FastGelu: (g, n, [dy]) => g.node('FastGeluGrad', [dy!, n.inputs[0]!], [{ stem: 'FastGeluGrad', type: 'float', shape: inShape(g, n, 0) }], {}, MS_DOMAIN),
  // d tanh(x) = (1 - y²) dy, from the output y.
  Tanh: (g, n, [dy]) => {
    const y = n.outputs[0]!;
    return [g.sub(dy!, g.mul(g.mul(dy!, y), y))];
  },
  Sigmoid: (g, n, [dy]) => g.node('SigmoidGrad', [dy!, n.outputs[0]!], [{ stem: 'SigmoidGrad', type: 'float', shape: inShape(g, n, 0) }], {}, MS_DOMAIN),
  Softmax: (g, n, [dy]) =>
    g.node('SoftmaxGrad_13', [dy!, n.outputs[0]!], [{ stem: 'SoftmaxGrad', type: 'float', shape: inShape(g, n, 0) }], { axis: n.attrs.axis as number }, MS_DOMAIN),
  Split: (g, n, dys) => {
    const axis = n.attrs.axis as number;
    const parts = n.outputs.map((o, i) => dys[i] ?? g.constF('zeros', new Float32Array(g.shape(o).reduce((a, b) => a * b, 1)), g.shape(o)));
    const [dx] = g.node('Concat', parts, [{ stem: 'Concat', type: 'float', shape: inShape(g, n, 0) }], { axis });
    return [dx, undefined];
  },
  SoftmaxCrossEntropyLoss: (g, n, [dy]) => {
    const [logits, labels] = n.inputs as [string, string];
    const [dx] = g.node('SoftmaxCrossEntropyLossGrad', [dy!, n.outputs[1]!, labels], [{ stem: 'dLogits', type: 'float', shape: g.shape(logits) }], {
      reduction: n.attrs.reduction as string,
      ignore_index: n.attrs.ignore_index as number,
    }, MS_DOMAIN);
    return [dx, undefined];
  },
};

function numelRows(shape: number[]): number {
  return shape.slice(0, -1).reduce((a, b) => a * b, 1);
}

/**
 * Appends the backward pass of `loss` (a scalar) to `g` and returns, for each name in `wrt`,
 * the value holding d loss / d name. Only nodes on a path from `wrt` to `loss` are differentiated.
 */
export function appendBackward(g: Graph, loss: string, wrt: readonly string[]): Map<string, string> {
  const forward = [...g.nodes];
  // Values that depend on something we differentiate with respect to.
  const live = new Set<string>(wrt);
  for (const n of forward) if (n.inputs.some((i) => live.has(i))) for (const o of n.outputs) live.add(o);
  if (!live.has(loss)) throw new Error(`loss '${loss}' does not depend on the trainable values`);

  const grads = new Map<string, string[]>();
  const push = (name: string, grad: string): void => {
    if (!live.has(name)) return;
    const list = grads.get(name) ?? [];
    list.push(grad);
    grads.set(name, list);
  };
  // Contributions are summed lazily, when the value's producer (or the caller) needs its total.
  const total = (name: string): string | undefined => {
    const list = grads.get(name);
    if (!list || list.length === 0) return undefined;
    let acc = list[0]!;
    for (let i = 1; i < list.length; i++) acc = g.add(acc, list[i]!);
    grads.set(name, [acc]);
    return acc;
  };
  push(loss, g.constF('dloss', [1], []));

  for (let k = forward.length - 1; k >= 0; k--) {
    const n = forward[k]!;
    if (!n.outputs.some((o) => live.has(o))) continue;
    const dOut = n.outputs.map(total);
    if (dOut.every((d) => d === undefined)) continue;
    const rule = RULES[n.op];
    if (!rule) throw new Error(`no gradient rule for ${n.op}`);
    const dIn = rule(g, n, dOut, n.inputs.map((i) => live.has(i)));
    n.inputs.forEach((input, i) => {
      const d = dIn[i];
      if (d !== undefined) push(input, d);
    });
  }
  const out = new Map<string, string>();
  for (const w of wrt) {
    const d = total(w);
    if (d === undefined) throw new Error(`'${w}' gets no gradient from '${loss}'`);
    out.set(w, d);
  }
  return out;
}
