/**
 * The architecture tables, read from architectures/*.json (mergekit `_data/architectures/*.json`
 * style: `${layer}` templates, shapes as formulas over spec fields), and the only place weight
 * names live. Each learned tensor carries a role (roles.ts); everything that reads weights
 * (checkpoint validation, the GPU forward, the float64 reference, the ONNX training graph, the
 * layer-wise analysis) asks this module by role.
 *
 * Canonical names: GPT-2 drops GPT2LMHeadModel's `transformer.` prefix (`wte.weight`,
 * `h.0.ln_1.weight`, `lm_head.weight`); the other families keep transformers' own names
 * (`model.layers.0.self_attn.q_proj.weight`), adding `model.` to bare base-model names.
 */
import { IncompatibleCheckpointError } from '../errors.ts';
import gpt2Json from './architectures/gpt2.json' with { type: 'json' };
import llamaJson from './architectures/llama.json' with { type: 'json' };
import phi3Json from './architectures/phi3.json' with { type: 'json' };
import qwen3Json from './architectures/qwen3.json' with { type: 'json' };
import gemma2Json from './architectures/gemma2.json' with { type: 'json' };
import olmo2Json from './architectures/olmo2.json' with { type: 'json' };
import {
  isBlockRole,
  isGlobalRole,
  type Affine,
  type AttentionIn,
  type BlockWeights,
  type GlobalRole,
  type MlpIn,
  type ModelWeights,
  type WeightLayout,
  type WeightRole,
} from './roles.ts';
import type { Family, ModelSpec, ModelType } from './spec.ts';

export type TensorKind = 'param' | 'buffer';

export interface ExpectedTensor {
  name: string;
  shape: number[];
  kind: TensorKind;
  layer: number | null;
  optional?: boolean;
  /** What the forward pass uses it for (every param has one; buffers have none). */
  role?: WeightRole;
}

/** One template row of an architecture file. */
interface WeightTemplate {
  name: string;
  /** Required for params; buffers have none. */
  role?: WeightRole;
  /** Integers or formulas over V, C, L, NH, NKV, HS, FF, P (e.g. "3*C", "NKV*HS", "HS/2"). */
  shape: (number | string)[];
  kind?: TensorKind;
  /** The tensor exists only when this ModelSpec boolean field (optionally negated with '!') holds. */
  when?: string;
  /** May be absent: always (true) or when this ModelSpec boolean field holds. */
  optional?: boolean | string;
  /** When absent, the forward reads the tensor of this role instead (a tied head reads the embedding). */
  fallback?: GlobalRole;
}

export interface ArchitectureFile {
  family: Family;
  model_types: ModelType[];
  /** Storage of the block's projection matrices (roles.ts). */
  layout: WeightLayout;
  strip_prefixes?: string[];
  add_prefix?: { prefix: string; when_starts_with: string[] };
  /** save_pretrained's names: canonical names under this prefix, except the rows of these roles. */
  stored_prefix?: { prefix: string; except_roles: WeightRole[] };
  pre_weights: WeightTemplate[];
  layer_templates: WeightTemplate[];
  post_weights: WeightTemplate[];
}

interface CompiledTemplate extends WeightTemplate {
  pattern: RegExp;
  perLayer: boolean;
}

interface Architecture {
  file: ArchitectureFile;
  all: CompiledTemplate[];
}

/** ModelSpec boolean fields a row's `when` / `optional` may name. */
const SPEC_FLAGS: readonly (keyof ModelSpec)[] = ['attnBias', 'attnOutBias', 'mlpBias', 'tieWordEmbeddings'];

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A table the forward passes can bind: every param has a role of its section, and the block is complete. */
export function checkArchitectureTable(file: ArchitectureFile): void {
  const fail = (message: string): never => {
    throw new Error(`architectures/${file.family}.json: ${message}`);
  };
  if (file.layout !== 'linear' && file.layout !== 'conv1d') fail(`layout '${String(file.layout)}' is not 'linear' or 'conv1d'`);
  const roles = (list: WeightTemplate[], isRole: (r: string) => boolean, where: string): Set<string> => {
    const seen = new Set<string>();
    for (const t of list) {
      for (const cond of [t.when, t.optional]) {
        if (typeof cond === 'string' && !SPEC_FLAGS.includes(cond.replace(/^!/, '') as keyof ModelSpec)) fail(`${t.name}: unknown spec flag '${cond}'`);
      }
      if ((t.kind ?? 'param') === 'buffer') {
        if (t.role !== undefined) fail(`${t.name}: a buffer has no role`);
        continue;
      }
      if (t.role === undefined || !isRole(t.role)) fail(`${t.name}: role '${String(t.role)}' is not a ${where} role`);
      if (seen.has(t.role!)) fail(`${t.name}: role '${t.role!}' appears twice`);
      seen.add(t.role!);
    }
    return seen;
  };
  const globals = new Set([...roles(file.pre_weights, isGlobalRole, 'global'), ...roles(file.post_weights, isGlobalRole, 'global')]);
  const block = roles(file.layer_templates, isBlockRole, 'block');
  for (const r of ['embed', 'norm_f', 'head']) if (!globals.has(r)) fail(`no '${r}' row`);
  for (const t of [...file.pre_weights, ...file.post_weights]) {
    if (t.fallback !== undefined && (!globals.has(t.fallback) || t.fallback === t.role)) fail(`${t.name}: fallback '${t.fallback}' is not another row's role`);
  }
  for (const r of ['attn.o', 'mlp.down']) if (!block.has(r)) fail(`no '${r}' row`);
  if (!block.has('norm1') && !block.has('attn.post_norm')) fail(`needs 'norm1' or 'attn.post_norm'`);
  if (!block.has('norm2') && !block.has('mlp.post_norm')) fail(`needs 'norm2' or 'mlp.post_norm'`);
  if (block.has('attn.q_norm') !== block.has('attn.k_norm')) fail(`'attn.q_norm' and 'attn.k_norm' come together`);
  const split = ['attn.q', 'attn.k', 'attn.v'].filter((r) => block.has(r)).length;
  if (block.has('attn.qkv') ? split !== 0 : split !== 3) fail(`needs 'attn.qkv' or all of 'attn.q', 'attn.k', 'attn.v'`);
  const mlp = block.has('mlp.gate_up') ? (block.has('mlp.gate') || block.has('mlp.up') ? 'bad' : 'ok') : block.has('mlp.up') ? 'ok' : 'bad';
  if (mlp === 'bad') fail(`needs 'mlp.gate_up', or 'mlp.up' with an optional 'mlp.gate'`);
  for (const r of [...block, ...globals]) {
    if (r.endsWith('.bias') && !block.has(r.slice(0, -5)) && !globals.has(r.slice(0, -5))) fail(`'${r}' without '${r.slice(0, -5)}'`);
  }
}

function compile(file: ArchitectureFile, family: Family): Architecture {
  if (file.family !== family) throw new Error(`architectures/${family}.json: family '${file.family}'`);
  checkArchitectureTable(file);
  const rows = (list: WeightTemplate[], perLayer: boolean): CompiledTemplate[] =>
    list.map((t) => ({
      ...t,
      perLayer,
      pattern: new RegExp(`^${t.name.split('${layer}').map(escapeRegExp).join('(\\d+)')}$`),
    }));
  return { file, all: [...rows(file.pre_weights, false), ...rows(file.layer_templates, true), ...rows(file.post_weights, false)] };
}

const ARCHITECTURES: Record<Family, Architecture> = {
  gpt2: compile(gpt2Json as ArchitectureFile, 'gpt2'),
  llama: compile(llamaJson as ArchitectureFile, 'llama'),
  phi3: compile(phi3Json as ArchitectureFile, 'phi3'),
  qwen3: compile(qwen3Json as ArchitectureFile, 'qwen3'),
  gemma2: compile(gemma2Json as ArchitectureFile, 'gemma2'),
  olmo2: compile(olmo2Json as ArchitectureFile, 'olmo2'),
};

/** Hugging Face `model_type` values we accept, and the family (table) each maps to. */
export const SUPPORTED_MODEL_TYPES: Readonly<Record<ModelType, Family>> = Object.fromEntries(
  Object.values(ARCHITECTURES).flatMap((a) => a.file.model_types.map((m) => [m, a.file.family])),
) as Record<ModelType, Family>;

/** The raw architecture table of a family (for display and for tools that want the templates). */
export function architecture(family: Family): Readonly<ArchitectureFile> {
  return ARCHITECTURES[family].file;
}

function variables(spec: ModelSpec): Record<string, number> {
  return {
    V: spec.vocabSize,
    C: spec.hiddenSize,
    L: spec.numLayers,
    NH: spec.numHeads,
    NKV: spec.numKvHeads,
    HS: spec.headDim,
    FF: spec.intermediateSize,
    P: spec.maxPositions,
  };
}

/** Evaluates an integer formula: identifiers, integers, + - * / and parentheses; '/' must divide exactly. */
export function evalShapeFormula(formula: string, vars: Record<string, number>): number {
  const tokens = formula.match(/\s*([A-Za-z_]\w*|\d+|[-+*/()])/g)?.map((t) => t.trim()) ?? [];
  if (tokens.join('') !== formula.replace(/\s+/g, '')) throw new Error(`bad shape formula '${formula}'`);
  let i = 0;
  const peek = (): string | undefined => tokens[i];
  const atom = (): number => {
    const t = tokens[i++];
    if (t === undefined) throw new Error(`bad shape formula '${formula}'`);
    if (t === '(') {
      const v = sum();
      if (tokens[i++] !== ')') throw new Error(`bad shape formula '${formula}'`);
      return v;
    }
    if (/^\d+$/.test(t)) return Number(t);
    const v = vars[t];
    if (v === undefined) throw new Error(`unknown variable '${t}' in shape formula '${formula}'`);
    return v;
  };
  const product = (): number => {
    let v = atom();
    while (peek() === '*' || peek() === '/') {
      const op = tokens[i++];
      const r = atom();
      if (op === '*') v *= r;
      else {
        if (r === 0 || v % r !== 0) throw new Error(`shape formula '${formula}' does not divide exactly`);
        v /= r;
      }
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (peek() === '+' || peek() === '-') v = tokens[i++] === '+' ? v + product() : v - product();
    return v;
  };
  const v = sum();
  if (i !== tokens.length) throw new Error(`bad shape formula '${formula}'`);
  return v;
}

function flag(spec: ModelSpec, condition: string): boolean {
  const negate = condition.startsWith('!');
  const value = (spec as unknown as Record<string, unknown>)[negate ? condition.slice(1) : condition] === true;
  return negate ? !value : value;
}

/** Every tensor a checkpoint of `spec` may hold, in canonical names and model order. */
export function expectedTensors(spec: ModelSpec): ExpectedTensor[] {
  const arch = ARCHITECTURES[spec.family];
  const vars = variables(spec);
  const out: ExpectedTensor[] = [];
  const emit = (t: WeightTemplate, layer: number | null): void => {
    if (t.when !== undefined && !flag(spec, t.when)) return;
    const optional = t.optional === true || (typeof t.optional === 'string' && flag(spec, t.optional));
    const row: ExpectedTensor = {
      name: layer === null ? t.name : t.name.split('${layer}').join(String(layer)),
      shape: t.shape.map((d) => (typeof d === 'number' ? d : evalShapeFormula(d, vars))),
      kind: t.kind ?? 'param',
      layer,
    };
    if (optional) row.optional = true;
    if (t.role !== undefined) row.role = t.role;
    out.push(row);
  };
  for (const t of arch.file.pre_weights) emit(t, null);
  for (let layer = 0; layer < spec.numLayers; layer++) for (const t of arch.file.layer_templates) emit(t, layer);
  for (const t of arch.file.post_weights) emit(t, null);
  return out;
}

/** The learned tensors the forward pass reads (each with its role), in model order; optional ones may be absent. */
export function forwardWeights(spec: ModelSpec): (ExpectedTensor & { role: WeightRole })[] {
  return expectedTensors(spec).filter((t): t is ExpectedTensor & { role: WeightRole } => t.kind === 'param');
}

/**
 * Binds every weight the forward reads by role. `get` returns the caller's handle for a present
 * tensor (and may check its shape), undefined for an absent one; a missing required tensor is an
 * IncompatibleCheckpointError naming it, an absent head with a fallback reads the fallback.
 */
export function bindWeights<T>(spec: ModelSpec, get: (t: ExpectedTensor) => T | undefined): ModelWeights<T> {
  const arch = ARCHITECTURES[spec.family];
  const globals = new Map<WeightRole, T>();
  const blocks = Array.from({ length: spec.numLayers }, () => new Map<WeightRole, T>());
  let fallback: { role: WeightRole; to: GlobalRole } | undefined;
  for (const t of forwardWeights(spec)) {
    const v = get(t);
    if (v === undefined) {
      const row = arch.file.post_weights.find((r) => r.role === t.role) ?? arch.file.pre_weights.find((r) => r.role === t.role);
      if (t.optional && row?.fallback !== undefined) fallback = { role: t.role, to: row.fallback };
      else if (!t.optional) throw new IncompatibleCheckpointError('missing tensor the forward pass needs', { tensor: t.name });
      continue;
    }
    (t.layer === null ? globals : blocks[t.layer]!).set(t.role, v);
  }
  if (fallback && globals.has(fallback.to)) globals.set(fallback.role, globals.get(fallback.to)!);
  const need = (m: Map<WeightRole, T>, role: WeightRole): T => {
    const v = m.get(role);
    if (v === undefined) {
      const t = forwardWeights(spec).find((r) => r.role === role);
      throw new IncompatibleCheckpointError('missing tensor the forward pass needs', { tensor: t?.name ?? `${spec.family} ${role}` });
    }
    return v;
  };
  const affine = (m: Map<WeightRole, T>, role: WeightRole): Affine<T> => {
    const b = m.get(`${role}.bias` as WeightRole);
    return b === undefined ? { w: need(m, role) } : { w: need(m, role), b };
  };
  const block = (m: Map<WeightRole, T>): BlockWeights<T> => {
    const attn: AttentionIn<T> = m.has('attn.qkv')
      ? { kind: 'fused', qkv: affine(m, 'attn.qkv') }
      : { kind: 'split', q: affine(m, 'attn.q'), k: affine(m, 'attn.k'), v: affine(m, 'attn.v') };
    const mlp: MlpIn<T> = m.has('mlp.gate_up')
      ? { kind: 'gated-fused', gateUp: affine(m, 'mlp.gate_up') }
      : m.has('mlp.gate')
        ? { kind: 'gated', gate: affine(m, 'mlp.gate'), up: affine(m, 'mlp.up') }
        : { kind: 'plain', up: affine(m, 'mlp.up') };
    const out: BlockWeights<T> = { attn, o: affine(m, 'attn.o'), mlp, down: affine(m, 'mlp.down') };
    if (m.has('norm1')) out.norm1 = affine(m, 'norm1');
    if (m.has('norm2')) out.norm2 = affine(m, 'norm2');
    if (m.has('attn.post_norm')) out.attnPostNorm = affine(m, 'attn.post_norm');
    if (m.has('mlp.post_norm')) out.mlpPostNorm = affine(m, 'mlp.post_norm');
    if (m.has('attn.q_norm')) out.qNorm = m.get('attn.q_norm')!;
    if (m.has('attn.k_norm')) out.kNorm = m.get('attn.k_norm')!;
    return out;
  };
  const out: ModelWeights<T> = {
    layout: arch.file.layout,
    embed: need(globals, 'embed'),
    blocks: blocks.map(block),
    normF: affine(globals, 'norm_f'),
    head: need(globals, 'head'),
  };
  const pos = globals.get('pos_embed');
  if (pos !== undefined) out.posEmbed = pos;
  return out;
}

/** The canonical name of a stored tensor name (GPT-2: strips `transformer.`; Llama, Phi-3: add `model.` to bare base-model names). */
export function canonicalName(family: Family, storedName: string): string {
  const file = ARCHITECTURES[family].file;
  for (const prefix of file.strip_prefixes ?? []) {
    if (storedName.startsWith(prefix)) return storedName.slice(prefix.length);
  }
  const add = file.add_prefix;
  if (add && add.when_starts_with.some((p) => storedName.startsWith(p))) return add.prefix + storedName;
  return storedName;
}

/** The name transformers' save_pretrained gives a canonical tensor (GPT-2: `transformer.` before all but the head). */
export function storedName(family: Family, canonical: string): string {
  const stored = ARCHITECTURES[family].file.stored_prefix;
  if (!stored) return canonical;
  const role = match(family, canonical)?.template.role;
  return role !== undefined && stored.except_roles.includes(role) ? canonical : stored.prefix + canonical;
}

function match(family: Family, name: string): { template: CompiledTemplate; layer: number | null } | null {
  const canonical = canonicalName(family, name);
  for (const template of ARCHITECTURES[family].all) {
    const m = template.pattern.exec(canonical);
    if (m) return { template, layer: template.perLayer ? Number(m[1]) : null };
  }
  return null;
}

/** 'param' (learned), 'buffer' (attn.bias masks, inv_freq) or 'unknown'; accepts stored or canonical names. */
export function classifyTensor(family: Family, name: string): TensorKind | 'unknown' {
  const m = match(family, name);
  return m ? (m.template.kind ?? 'param') : 'unknown';
}

/** The transformer block index a tensor belongs to (null for embeddings, final norm, head, unknown). */
export function layerOf(family: Family, name: string): number | null {
  return match(family, name)?.layer ?? null;
}

/** What a learned tensor is for (null for buffers and unknown names); accepts stored or canonical names. */
export function roleOf(family: Family, name: string): WeightRole | null {
  return match(family, name)?.template.role ?? null;
}
