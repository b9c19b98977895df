/**
 * A small ONNX graph DSL with static shapes. Every value carries its element type and its full
 * shape (the training graphs here have fixed (B, T)), which the autodiff needs to undo
 * broadcasting. `toModel` serialises a ModelProto through onnx-proto.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export type ElemType = 'float' | 'int64' | 'bool';
const ELEM_CODE: Record<ElemType, number> = { float: 1, int64: 7, bool: 9 };

export const MS_DOMAIN = 'com.microsoft';
/** ONNX default-domain opset: LayerNormalization is standard from 17. */
export const ONNX_OPSET = 17;

export type AttrValue = number | string | number[] | { float: number } | { floats: number[] };

export interface Node {
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export interface Value {
  name: string;
  type: ElemType;
  shape: number[];
}

export interface Initializer extends Value {
  data: Float32Array | BigInt64Array;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** NumPy broadcasting of two static shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[], what: string): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`${what}: shapes [${a.join(',')}] and [${b.join(',')}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly initializers: Initializer[] = [];
  readonly values = new Map<string, Value>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** A fresh intermediate name with a readable stem. */
  fresh(stem: string): string {
    return `${stem}__${this.counter++}`;
  }

  value(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw new Error(`graph ${this.name}: unknown value '${name}'`);
    return v;
  }

  shape(name: string): number[] {
    return this.value(name).shape;
  }

  private define(name: string, type: ElemType, shape: number[]): string {
    if (this.values.has(name)) throw new Error(`graph ${this.name}: value '${name}' defined twice`);
    this.values.set(name, { name, type, shape: [...shape] });
    return name;
  }

  input(name: string, type: ElemType, shape: number[]): string {
    this.define(name, type, shape);
    this.inputs.push(this.value(name));
    return name;
  }

  output(name: string): void {
    this.outputs.push(this.value(name));
  }

  constF(stem: string, data: Float32Array | number[], shape: number[]): string {
    const name = this.fresh(stem);
    const d = data instanceof Float32Array ? data : Float32Array.from(data);
    if (d.length !== numel(shape)) throw new Error(`constant ${stem}: ${d.length} values for shape [${shape.join(',')}]`);
    this.define(name, 'float', shape);
    this.initializers.push({ name, type: 'float', shape: [...shape], data: d });
    return name;
  }

  constI(stem: string, data: number[], shape: number[] = [data.length]): string {
    const name = this.fresh(stem);
    this.define(name, 'int64', shape);
    this.initializers.push({ name, type: 'int64', shape: [...shape], data: BigInt64Array.from(data.map((x) => BigInt(x))) });
    return name;
  }

  /** Appends a node whose outputs get the given types/shapes; returns the output names. */
  node(op: string, inputs: string[], outs: { stem?: string; name?: string; type: ElemType; shape: number[] }[], attrs: Record<string, AttrValue> = {}, domain = ''): string[] {
    for (const i of inputs) if (i !== '' && !this.values.has(i)) throw new Error(`graph ${this.name}: ${op} reads unknown value '${i}'`);
    const outputs = outs.map((o) => this.define(o.name ?? this.fresh(o.stem ?? op), o.type, o.shape));
    this.nodes.push({ op, domain, inputs, outputs, attrs });
    return outputs;
  }

  private f(op: string, inputs: string[], shape: number[], attrs: Record<string, AttrValue> = {}, domain = '', name?: string): string {
    return this.node(op, inputs, [{ type: 'float', shape, ...(name ? { name } : { stem: op }) }], attrs, domain)[0]!;
  }

  // ---- forward ops (each computes its static output shape) ----

  add(a: string, b: string, name?: string): string {
    return this.f('Add', [a, b], broadcastShapes(this.shape(a), this.shape(b), 'Add'), {}, '', name);
  }
  sub(a: string, b: string): string {
    return this.f('Sub', [a, b], broadcastShapes(this.shape(a), this.shape(b), 'Sub'));
  }
  mul(a: string, b: string): string {
    return this.f('Mul', [a, b], broadcastShapes(this.shape(a), this.shape(b), 'Mul'));
  }
  neg(a: string): string {
    return this.f('Neg', [a], this.shape(a));
  }

  matmul(a: string, b: string): string {
    const sa = this.shape(a);
    const sb = this.shape(b);
    if (sa.length < 2 || sb.length < 2) throw new Error('MatMul: operands must have rank >= 2 here');
    const K = sa[sa.length - 1]!;
    if (sb[sb.length - 2] !== K) throw new Error(`MatMul: [${sa.join(',')}] x [${sb.join(',')}]`);
    const batch = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2), 'MatMul batch');
    return this.f('MatMul', [a, b], [...batch, sa[sa.length - 2]!, sb[sb.length - 1]!]);
  }

  transpose(x: string, perm: number[]): string {
    const s = this.shape(x);
    return this.f('Transpose', [x], perm.map((p) => s[p]!), { perm });
  }

  reshape(x: string, shape: number[]): string {
    if (numel(shape) !== numel(this.shape(x))) throw new Error(`Reshape: [${this.shape(x).join(',')}] -> [${shape.join(',')}]`);
    const type = this.value(x).type;
    return this.node('Reshape', [x, this.constI('shape', shape)], [{ stem: 'Reshape', type, shape }])[0]!;
  }

  gather(data: string, indices: string, axis = 0): string {
    const sd = this.shape(data);
    const si = this.shape(indices);
    const ax = axis < 0 ? sd.length + axis : axis;
    return this.f('Gather', [data, indices], [...sd.slice(0, ax), ...si, ...sd.slice(ax + 1)], { axis });
  }

  /** ONNX LayerNormalization over the last axis; Mean/InvStdDev are kept for the gradient. */
  layerNorm(x: string, scale: string, bias: string, epsilon: number): string {
    const s = this.shape(x);
    const stat = [...s.slice(0, -1), 1];
    return this.node('LayerNormalization', [x, scale, bias], [
      { stem: 'LayerNorm', type: 'float', shape: s },
      { stem: 'LayerNorm_mean', type: 'float', shape: stat },
      { stem: 'LayerNorm_invstd', type: 'float', shape: stat },
    ], { axis: -1, epsilon: { float: epsilon } })[0]!;
  }

  /** RMSNorm: onnxruntime's SimplifiedLayerNormalization (default domain); inv_std_var kept for the gradient. */
  rmsNorm(x: string, scale: string, epsilon: number): string {
    const s = this.shape(x);
    return this.node('SimplifiedLayerNormalization', [x, scale], [
      { stem: 'RMSNorm', type: 'float', shape: s },
      { stem: 'RMSNorm_invstd', type: 'float', shape: [...s.slice(0, -1), 1] },
    ], { axis: -1, epsilon: { float: epsilon } })[0]!;
  }

  /** 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): transformers' gelu_new. */
  fastGelu(x: string): string {
    return this.f('FastGelu', [x], this.shape(x), {}, MS_DOMAIN);
  }
  sigmoid(x: string): string {
    return this.f('Sigmoid', [x], this.shape(x));
  }
  tanh(x: string): string {
    return this.f('Tanh', [x], this.shape(x));
  }
  softmax(x: string): string {
    return this.f('Softmax', [x], this.shape(x), { axis: -1 });
  }

  split(x: string, axis: number, sizes: number[]): string[] {
    const s = this.shape(x);
    const ax = axis < 0 ? s.length + axis : axis;
    const outs = sizes.map((n) => ({ stem: 'Split', type: 'float' as const, shape: s.map((d, i) => (i === ax ? n : d)) }));
    return this.node('Split', [x, this.constI('split', sizes)], outs, { axis });
  }

  /** Mean cross-entropy over the rows of (N, V) logits whose label is not `ignoreIndex`. */
  crossEntropy(logits: string, labels: string, ignoreIndex: number, name: string): string {
    const s = this.shape(logits);
    return this.node('SoftmaxCrossEntropyLoss', [logits, labels], [
      { name, type: 'float', shape: [] },
      { stem: 'log_prob', type: 'float', shape: s },
    ], { reduction: 'mean', ignore_index: ignoreIndex })[0]!;
  }

  /** Serialises the graph as ModelProto bytes. */
  toModel(): Uint8Array {
    const vi = (v: Value): onnxProto.onnx.IValueInfoProto => ({
      name: v.name,
      type: { tensorType: { elemType: ELEM_CODE[v.type], shape: { dim: v.shape.map((d) => ({ dimValue: d })) } } },
    });
    const tensor = (t: Initializer): onnxProto.onnx.ITensorProto => {
      const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice();
      return { name: t.name, dataType: ELEM_CODE[t.type], dims: t.shape, rawData: raw };
    };
    const A = onnx.AttributeProto.AttributeType;
    const attr = (name: string, v: AttrValue): onnxProto.onnx.IAttributeProto => {
      if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
      if (typeof v === 'number') return { name, type: A.INT, i: v };
      if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
      if ('float' in v) return { name, type: A.FLOAT, f: v.float };
      return { name, type: A.FLOATS, floats: v.floats };
    };
    const domains = new Set(this.nodes.map((n) => n.domain));
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'dem-studio',
      opsetImport: [{ domain: '', version: ONNX_OPSET }, ...(domains.has(MS_DOMAIN) ? [{ domain: MS_DOMAIN, version: 1 }] : [])],
      graph: {
        name: this.name,
        node: this.nodes.map((n, i) => ({
          name: `${n.op}_${i}`,
          opType: n.op,
          domain: n.domain,
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attrs).map(([k, v]) => attr(k, v)),
        })),
        input: this.inputs.map(vi),
        output: this.outputs.map(vi),
        initializer: this.initializers.map(tensor),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
