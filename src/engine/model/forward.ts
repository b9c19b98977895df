import { IncompatibleCheckpointError, InputError, throwIfAborted } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import type { ExpectedTensor } from '../io/weights.ts';
import type { Affine, ModelWeights } from '../io/roles.ts';
import type { ModelSpec } from '../io/spec.ts';
import { bindWeights } from '../io/weights.ts';
import { geluMul, geluNew, siluMul } from '../kernels/activation.ts';
import { attention, type StridedHeads } from '../kernels/attention.ts';
import { embedding } from '../kernels/embedding.ts';
import { gatherRows } from '../kernels/gather_rows.ts';
import { headNorm } from '../kernels/headnorm.ts';
import { kvStore } from '../kernels/kvcache.ts';
import { layerNorm } from '../kernels/layernorm.ts';
import { lmHeadLogits, lmHeadNll } from '../kernels/lmhead_nll.ts';
import { matmul } from '../kernels/matmul.ts';
import { KernelPass } from '../kernels/pass.ts';
import { residualAdd } from '../kernels/residual.ts';
import { rmsNorm } from '../kernels/rmsnorm.ts';
import { rope, ropeTable } from '../kernels/rope.ts';
import { elementCount, type GpuTensor, type WeightView } from '../gpu/tensor.ts';
import { dtypeSize, isFloatDType } from '../io/dtypes.ts';
import type { WindowScorer } from './perplexity.ts';
import { ropeFrequencies, ropeKey } from './rope.ts';
import { attentionScale, checkForwardSupport, layerWindow } from './support.ts';

/**
 * The transformer forward pass on the GPU, built from the kernels in ../kernels over weights
 * already on the GPU (raw stored bytes, decoded in WGSL) and bound by role from the architecture
 * table (io/weights.ts bindWeights): the variants are the spec's norm, activation, positions,
 * scales and caps and the roles the table has (fused or split q/k/v, q/k norms, pre- and/or
 * post-norms, plain, gated or fused gate/up MLP), never a family name. Fused weights are read in
 * place: a matmul's n0 picks its rows of the matrix. RoPE reads a cos/sin table per frequency set
 * (model/rope.ts): one for the model, plus, for `dynamic` scaling, one per sequence length beyond
 * max_position_embeddings (windows are grouped so a batch shares its table).
 * Activations for (B, T) rows are allocated once for the largest batch seen and reused; the LM
 * head streams over vocabulary chunks so (B*T, V) logits never exist.
 */
export interface GpuModelOptions {
  /** Longest window / generation context; default min(maxPositions, 1024). */
  maxContext?: number;
  /** Windows per dispatch in nllBatch; default 8. */
  maxBatch?: number;
  /** Vocabulary columns per LM-head chunk; default: what fits 16 MiB of logits. */
  vocabChunk?: number;
}

export interface NllResult {
  nllSum: number;
  count: number;
}

/** Tokens ids[from..n−1] of `ids`, each to be scored given every token before it (1 ≤ from < n). */
export interface TokenSpan {
  ids: readonly number[];
  from: number;
}

/** Per-layer K and V for one sequence (B = 1): (capacity, NKV*HS) f32 each. */
export class KvCache {
  readonly k: GPUBuffer[];
  readonly v: GPUBuffer[];
  readonly capacity: number;
  /** Positions already stored; the next logitsLast call continues from here. */
  length = 0;
  private readonly rt: GpuRuntime;

  constructor(rt: GpuRuntime, layers: number, capacity: number, kvd: number) {
    this.rt = rt;
    this.capacity = capacity;
    this.k = Array.from({ length: layers }, (_, i) => rt.storage(`GpuModel.kvcache.k${i}`, capacity * kvd * 4));
    this.v = Array.from({ length: layers }, (_, i) => rt.storage(`GpuModel.kvcache.v${i}`, capacity * kvd * 4));
  }

  release(): void {
    this.rt.release(...this.k, ...this.v);
  }
}

interface Workspace {
  rows: number;
  VC: number;
  ids: GPUBuffer; // (rows) u32
  targets: GPUBuffer; // (rows) i32
  rowIndex: GPUBuffer; // (rows) u32, the rows spanNll sends through the LM head
  x: GPUBuffer; // (rows, C) residual stream
  xn: GPUBuffer; // (rows, C) normed
  qkv: GPUBuffer; // (rows, QD + 2 KVD)
  att: GPUBuffer; // (rows, QD)
  proj: GPUBuffer; // (rows, C)
  ff: GPUBuffer; // (rows, FF)
  ff2: GPUBuffer; // (rows, FF), the gate of a gated MLP (1 float otherwise)
  chunk: GPUBuffer; // (rows, VC) logits of one vocabulary chunk
  state: GPUBuffer; // (rows, 3)
  nll: GPUBuffer; // (rows)
  logits: GPUBuffer; // (V) for generation
}

const CHUNK_BYTES = 16 * 1024 * 1024;

export class GpuModel implements WindowScorer {
  readonly rt: GpuRuntime;
  readonly spec: ModelSpec;
  readonly maxContext: number;
  readonly maxBatch: number;
  private readonly vocabChunk: number | undefined;
  private readonly w: ModelWeights<WeightView>;
  /** cos/sin tables by model/rope.ts ropeKey (dynamic RoPE: by sequence length). */
  private readonly ropeTables = new Map<number, GPUBuffer>();
  private ws: Workspace | undefined;
  private busy: Promise<unknown> = Promise.resolve();

  private constructor(rt: GpuRuntime, spec: ModelSpec, weights: ModelWeights<WeightView>, options: GpuModelOptions) {
    this.rt = rt;
    this.spec = spec;
    this.w = weights;
    this.maxContext = options.maxContext ?? Math.min(spec.maxPositions, 1024);
    this.maxBatch = Math.max(1, options.maxBatch ?? 8);
    this.vocabChunk = options.vocabChunk;
    if (spec.positions === 'learned' && this.maxContext > spec.maxPositions) {
      throw new InputError(`maxContext ${this.maxContext} exceeds the model's ${spec.maxPositions} learned positions`);
    }
  }

  /** The RoPE table for a sequence of `seqLen` positions (undefined for learned positions); at most two kept. */
  private ropeTable(seqLen: number): GPUBuffer | undefined {
    if (this.spec.positions !== 'rope') return undefined;
    const key = ropeKey(this.spec, seqLen);
    let table = this.ropeTables.get(key);
    if (!table) {
      if (this.ropeTables.size >= 2) {
        this.rt.release(...this.ropeTables.values());
        this.ropeTables.clear();
      }
      table = this.rt.upload(`GpuModel.rope.table${key ? `.${key}` : ''}`, ropeTable(this.maxContext, ropeFrequencies(this.spec, seqLen)));
      this.ropeTables.set(key, table);
    }
    return table;
  }

  /** Checks every tensor the forward reads (presence, shape, dtype, bytes), binds them by role and builds the model. */
  static async create(rt: GpuRuntime, spec: ModelSpec, weights: Map<string, GpuTensor>, options: GpuModelOptions = {}): Promise<GpuModel> {
    const bound = bindWeights(spec, (t: ExpectedTensor): WeightView | undefined => {
      const w = weights.get(t.name);
      if (!w) return undefined;
      if (!isFloatDType(w.dtype)) {
        throw new IncompatibleCheckpointError(`dtype ${String(w.dtype)} is not supported (F32, F16, BF16)`, { tensor: t.name });
      }
      if (w.shape.length !== t.shape.length || w.shape.some((d, i) => d !== t.shape[i])) {
        throw new IncompatibleCheckpointError(`shape [${w.shape.join(', ')}] does not match the config's [${t.shape.join(', ')}]`, { tensor: t.name });
      }
      const bytes = elementCount(t.shape) * dtypeSize(w.dtype);
      if (w.buffer.size < bytes) throw new IncompatibleCheckpointError(`GPU buffer holds ${w.buffer.size} bytes, needs ${bytes}`, { tensor: t.name });
      return { buffer: w.buffer, dtype: w.dtype };
    });
    checkForwardSupport(spec, bound);
    return rt.scoped('GpuModel.create', () => new GpuModel(rt, spec, bound, options));
  }

  /** Summed NLL of tokens 1..n-1 of one window, predicted from the preceding ones. */
  async nll(ids: readonly number[]): Promise<NllResult> {
    const [sum] = await this.nllWindows([ids]);
    return { nllSum: sum!, count: Math.max(0, ids.length - 1) };
  }

  /** Several windows, batched (B, T) per dispatch; per-window sums and their total. */
  async nllBatch(windows: readonly (readonly number[])[], signal?: AbortSignal): Promise<NllResult & { perWindow: number[] }> {
    const perWindow = await this.nllWindows(windows, signal);
    return {
      nllSum: perWindow.reduce((a, b) => a + b, 0),
      count: windows.reduce((n, w) => n + Math.max(0, w.length - 1), 0),
      perWindow,
    };
  }

  /** WindowScorer for perplexity(): summed NLL of tokens 1..n-1 of each window. */
  nllWindows(windows: readonly (readonly number[])[], signal?: AbortSignal): Promise<number[]> {
    return this.serial(async () => {
      const out: number[] = [];
      // Up to maxBatch consecutive windows that share their RoPE frequencies.
      for (let i = 0; i < windows.length; ) {
        throwIfAborted(signal);
        const key = ropeKey(this.spec, windows[i]!.length);
        let j = i + 1;
        while (j < windows.length && j - i < this.maxBatch && ropeKey(this.spec, windows[j]!.length) === key) j++;
        out.push(...(await this.nllGroup(windows.slice(i, j))));
        i = j;
      }
      return out;
    });
  }

  /**
   * Per-token NLL of each span's tokens ids[from..n−1], each predicted from all tokens before it
   * in the span (task scoring: a continuation after its context). The span's last token is not
   * fed, so a span holds up to maxContext + 1 tokens. Only the rows predicting scored tokens go
   * through the LM head (gathered into an (R, C) block first), so a long context costs the
   * transformer layers, not T·V logits. Spans are batched maxBatch per dispatch.
   */
  spanNll(spans: readonly TokenSpan[], signal?: AbortSignal): Promise<number[][]> {
    return this.serial(async () => {
      const out: number[][] = [];
      for (let i = 0; i < spans.length; i += this.maxBatch) {
        throwIfAborted(signal);
        out.push(...(await this.spanGroup(spans.slice(i, i + this.maxBatch))));
      }
      return out;
    });
  }

  /** A KV cache for generation with logitsLast (one sequence, up to `capacity` positions). */
  createKvCache(capacity = this.maxContext): KvCache {
    if (capacity > this.maxContext) throw new InputError(`KV cache capacity ${capacity} exceeds maxContext ${this.maxContext}`);
    return new KvCache(this.rt, this.spec.numLayers, capacity, this.spec.numKvHeads * this.spec.headDim);
  }

  /**
   * Logits (V) after the last of `ids`. With a cache, `ids` are the new tokens following the
   * cache.length positions already stored, and the cache is extended by them.
   */
  logitsLast(ids: readonly number[], cache?: KvCache): Promise<Float32Array> {
    return this.serial(async () => {
      const T = ids.length;
      if (T === 0) throw new InputError('logitsLast needs at least one token');
      const p0 = cache?.length ?? 0;
      const limit = cache?.capacity ?? this.maxContext;
      if (p0 + T > limit) throw new InputError(`${p0 + T} positions exceed the ${cache ? 'KV cache capacity' : 'maximum context'} (${limit})`);
      this.checkIds(ids);
      const ws = this.workspace(T);
      this.rt.write(ws.ids, Uint32Array.from(ids));
      await this.rt.scoped('GpuModel.logitsLast', () => {
        const pass = new KernelPass(this.rt, 'GpuModel.logitsLast');
        this.encodeForward(pass, ws, 1, T, p0, cache);
        lmHeadLogits(pass, { row: T - 1, C: this.spec.hiddenSize, V: this.spec.vocabSize, x: ws.xn, w: this.w.head, out: ws.logits });
        pass.submit();
      });
      const logits = await this.rt.readF32(ws.logits, this.spec.vocabSize);
      const cap = this.spec.finalSoftcap;
      if (cap !== undefined) for (let i = 0; i < logits.length; i++) logits[i] = cap * Math.tanh(logits[i]! / cap);
      if (cache) cache.length = p0 + T;
      return logits;
    });
  }

  /** Releases the activation workspace and tables (weights belong to the caller). */
  destroy(): void {
    this.releaseWorkspace();
    this.rt.release(...this.ropeTables.values());
    this.ropeTables.clear();
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.busy.then(work, work);
    this.busy = run.catch(() => undefined);
    return run;
  }

  private checkIds(ids: readonly number[]): void {
    const V = this.spec.vocabSize;
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= V) throw new InputError(`token id ${id} is outside the vocabulary [0, ${V})`);
  }

  private async nllGroup(windows: readonly (readonly number[])[]): Promise<number[]> {
    const B = windows.length;
    // Shorter windows are padded at the end: causal attention keeps padding out of real rows.
    const T = Math.max(...windows.map((w) => w.length));
    if (T > this.maxContext) throw new InputError(`a window of ${T} tokens exceeds the maximum context (${this.maxContext})`);
    const ids = new Uint32Array(B * T);
    const targets = new Int32Array(B * T).fill(-1);
    windows.forEach((w, b) => {
      this.checkIds(w);
      for (let t = 0; t < w.length; t++) {
        ids[b * T + t] = w[t]!;
        if (t + 1 < w.length) targets[b * T + t] = w[t + 1]!;
      }
    });
    const ws = this.workspace(B * T);
    this.rt.write(ws.ids, ids);
    this.rt.write(ws.targets, targets);
    await this.rt.scoped('GpuModel.nll', () => {
      const pass = new KernelPass(this.rt, 'GpuModel.nll');
      this.encodeForward(pass, ws, B, T, 0);
      const { hiddenSize: C, vocabSize: V } = this.spec;
      lmHeadNll(pass, { rows: B * T, C, V, x: ws.xn, w: this.w.head, targets: ws.targets, chunk: ws.chunk, VC: ws.VC, state: ws.state, nll: ws.nll, softcap: this.spec.finalSoftcap });
      pass.submit();
    });
    const nll = await this.rt.readF32(ws.nll, B * T);
    return windows.map((w, b) => {
      let s = 0;
      for (let t = 0; t + 1 < w.length; t++) s += nll[b * T + t]!;
      return s;
    });
  }

  private async spanGroup(spans: readonly TokenSpan[]): Promise<number[][]> {
    const B = spans.length;
    // Inputs are ids[0..n−2] (the last token is only a target), padded at the end like nllGroup's.
    const T = Math.max(...spans.map((s) => s.ids.length - 1));
    if (T > this.maxContext) throw new InputError(`a span of ${T + 1} tokens exceeds the maximum context (${this.maxContext}) + 1`);
    const ids = new Uint32Array(B * T);
    const rowIndex: number[] = [];
    const targets: number[] = [];
    spans.forEach((s, b) => {
      const n = s.ids.length;
      if (!Number.isInteger(s.from) || s.from < 1 || s.from >= n) throw new InputError(`span start ${s.from} is outside [1, ${n})`);
      this.checkIds(s.ids);
      for (let t = 0; t + 1 < n; t++) ids[b * T + t] = s.ids[t]!;
      for (let t = s.from - 1; t + 1 < n; t++) {
        rowIndex.push(b * T + t);
        targets.push(s.ids[t + 1]!);
      }
    });
    const R = rowIndex.length;
    const ws = this.workspace(B * T);
    this.rt.write(ws.ids, ids);
    this.rt.write(ws.rowIndex, Uint32Array.from(rowIndex));
    this.rt.write(ws.targets, Int32Array.from(targets));
    await this.rt.scoped('GpuModel.spanNll', () => {
      const pass = new KernelPass(this.rt, 'GpuModel.spanNll');
      this.encodeForward(pass, ws, B, T, 0);
      const { hiddenSize: C, vocabSize: V } = this.spec;
      // The residual stream x is free once the final norm has read it: it takes the gathered rows.
      gatherRows(pass, { R, C, idx: ws.rowIndex, x: ws.xn, y: ws.x });
      lmHeadNll(pass, { rows: R, C, V, x: ws.x, w: this.w.head, targets: ws.targets, chunk: ws.chunk, VC: ws.VC, state: ws.state, nll: ws.nll });
      pass.submit();
    });
    const nll = await this.rt.readF32(ws.nll, R);
    let r = 0;
    return spans.map((s) => Array.from({ length: s.ids.length - s.from }, () => nll[r++]!));
  }

  /** Records embedding → L blocks → final norm for (B, T) rows at positions [p0, p0 + T); result in ws.xn. */
  private encodeForward(pass: KernelPass, ws: Workspace, B: number, T: number, p0: number, cache?: KvCache): void {
    const s = this.spec;
    const { hiddenSize: C, numHeads: NH, numKvHeads: NKV, headDim: HS, intermediateSize: FF } = s;
    const rows = B * T;
    const QD = NH * HS;
    const KVD = NKV * HS;
    const ld = QD + 2 * KVD;
    const layout = this.w.layout;
    const table = this.ropeTable(p0 + T);
    const norm = (x: GPUBuffer, n: Affine<WeightView>, y: GPUBuffer): void => {
      if (s.norm === 'layernorm') layerNorm(pass, { rows, C, eps: s.normEps, x, w: n.w, b: n.b!, y });
      else rmsNorm(pass, { rows, C, eps: s.normEps, x, w: n.w, y, plusOne: s.normPlusOne });
    };
    // A sub-block's input: the residual stream, or its pre-norm into ws.xn.
    const input = (n: Affine<WeightView> | undefined): GPUBuffer => {
      if (!n) return ws.x;
      norm(ws.x, n, ws.xn);
      return ws.xn;
    };
    // x += the sub-block's output in ws.proj, through its post-norm (into ws.xn, free by then) if any.
    const residual = (n: Affine<WeightView> | undefined): void => {
      if (n) norm(ws.proj, n, ws.xn);
      residualAdd(pass, rows * C, ws.x, n ? ws.xn : ws.proj);
    };
    // y[:, yoff : yoff + N] = x (rows, K) · W[n0 : n0 + N]ᵀ (+ bias), W with NW output features.
    const mm = (x: GPUBuffer, K: number, l: Affine<WeightView>, N: number, y: GPUBuffer, o: { ldy?: number; yoff?: number; n0?: number; NW?: number } = {}): void =>
      matmul(pass, { M: rows, N, K, x, w: l.w, layout, bias: l.b, y, ldy: o.ldy ?? N, yoff: o.yoff ?? 0, n0: o.n0, NW: o.NW });

    embedding(pass, { rows, T, C, p0, ids: ws.ids, wte: this.w.embed, wpe: this.w.posEmbed, scale: s.embedScale, out: ws.x });
    this.w.blocks.forEach((L, i) => {
      const xa = input(L.norm1);
      if (L.attn.kind === 'fused') mm(xa, C, L.attn.qkv, ld, ws.qkv);
      else {
        const { q, k, v } = L.attn;
        mm(xa, C, q, QD, ws.qkv, { ldy: ld, yoff: 0 });
        mm(xa, C, k, KVD, ws.qkv, { ldy: ld, yoff: QD });
        mm(xa, C, v, KVD, ws.qkv, { ldy: ld, yoff: QD + KVD });
      }
      if (L.qNorm && L.kNorm) {
        // Per head (G heads of HS) or over the whole q / k projection (one segment).
        const perHead = s.qkNorm === 'head';
        headNorm(pass, { rows, G: perHead ? NH : 1, W: perHead ? HS : QD, ld, off: 0, eps: s.normEps, w: L.qNorm, buf: ws.qkv });
        headNorm(pass, { rows, G: perHead ? NKV : 1, W: perHead ? HS : KVD, ld, off: QD, eps: s.normEps, w: L.kNorm, buf: ws.qkv });
      }
      if (table) rope(pass, { rows, T, p0, ld, off: 0, nheads: NH + NKV, HS, table, buf: ws.qkv });
      const q: StridedHeads = { buffer: ws.qkv, bs: T * ld, ld, off: 0 };
      let k: StridedHeads = { buffer: ws.qkv, bs: T * ld, ld, off: QD };
      let v: StridedHeads = { buffer: ws.qkv, bs: T * ld, ld, off: QD + KVD };
      if (cache) {
        kvStore(pass, { B, T, p0, P: cache.capacity, KVD, qkv: ws.qkv, ld, kOff: QD, vOff: QD + KVD, kc: cache.k[i]!, vc: cache.v[i]! });
        k = { buffer: cache.k[i]!, bs: cache.capacity * KVD, ld: KVD, off: 0 };
        v = { buffer: cache.v[i]!, bs: cache.capacity * KVD, ld: KVD, off: 0 };
      }
      attention(pass, { B, T, p0, NH, NKV, HS, window: layerWindow(s, i), scale: attentionScale(s), softcap: s.attnSoftcap, q, k, v, out: ws.att });
      mm(ws.att, QD, L.o, C, ws.proj);
      residual(L.attnPostNorm);
      const xm = input(L.norm2);
      const mlp = L.mlp;
      if (mlp.kind === 'plain') {
        mm(xm, C, mlp.up, FF, ws.ff);
        geluNew(pass, rows * FF, ws.ff);
        mm(ws.ff, FF, L.down, C, ws.proj);
      } else {
        // up into ff, gate into ff2; ff2 = act(ff2) * ff. Fused: gate rows [0, FF), up rows [FF, 2 FF).
        if (mlp.kind === 'gated') {
          mm(xm, C, mlp.up, FF, ws.ff);
          mm(xm, C, mlp.gate, FF, ws.ff2);
        } else {
          mm(xm, C, mlp.gateUp, FF, ws.ff, { n0: FF, NW: 2 * FF });
          mm(xm, C, mlp.gateUp, FF, ws.ff2, { n0: 0, NW: 2 * FF });
        }
        if (s.activation === 'silu') siluMul(pass, rows * FF, ws.ff2, ws.ff);
        else geluMul(pass, rows * FF, ws.ff2, ws.ff);
        mm(ws.ff2, FF, L.down, C, ws.proj);
      }
      residual(L.mlpPostNorm);
    });
    norm(ws.x, this.w.normF, ws.xn);
  }

  private workspace(rows: number): Workspace {
    if (this.ws && this.ws.rows >= rows) return this.ws;
    this.releaseWorkspace();
    const s = this.spec;
    const QD = s.numHeads * s.headDim;
    const ld = QD + 2 * s.numKvHeads * s.headDim;
    const V = s.vocabSize;
    let VC = this.vocabChunk ?? Math.max(1, Math.floor(CHUNK_BYTES / (rows * 4)));
    if (VC >= 64 && this.vocabChunk === undefined) VC -= VC % 64;
    VC = Math.min(V, VC);
    const buf = (label: string, floats: number): GPUBuffer => this.rt.storage(`GpuModel.${label}`, floats * 4);
    this.ws = {
      rows,
      VC,
      ids: buf('ids', rows),
      targets: buf('targets', rows),
      rowIndex: buf('rowIndex', rows),
      x: buf('x', rows * s.hiddenSize),
      xn: buf('xn', rows * s.hiddenSize),
      qkv: buf('qkv', rows * ld),
      att: buf('att', rows * QD),
      proj: buf('proj', rows * s.hiddenSize),
      ff: buf('ff', rows * s.intermediateSize),
      ff2: buf('ff2', this.w.blocks[0]?.mlp.kind === 'plain' ? 1 : rows * s.intermediateSize),
      chunk: buf('chunk', rows * VC),
      state: buf('state', rows * 3),
      nll: buf('nll', rows),
      logits: buf('logits', V),
    };
    return this.ws;
  }

  private releaseWorkspace(): void {
    const ws = this.ws;
    if (!ws) return;
    this.rt.release(ws.ids, ws.targets, ws.rowIndex, ws.x, ws.xn, ws.qkv, ws.att, ws.proj, ws.ff, ws.ff2, ws.chunk, ws.state, ws.nll, ws.logits);
    this.ws = undefined;
  }
}

