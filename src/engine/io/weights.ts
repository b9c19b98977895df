/**
 * Weight-name tables per family, read from architectures/*.json (mergekit
 * `_data/architectures/*.json` style: `${layer}` templates, shapes as formulas over spec fields).
 *
 * Canonical names: GPT-2 drops GPT2LMHeadModel's `transformer.` prefix (`wte.weight`,
 * `h.0.ln_1.weight`, `lm_head.weight`); Llama-family keeps transformers' own names
 * (`model.layers.0.self_attn.q_proj.weight`), adding `model.` to bare LlamaModel names.
 */
import gpt2Json from './architectures/gpt2.json' with { type: 'json' };
import llamaJson from './architectures/llama.json' with { type: 'json' };
import type { Family, ModelSpec } from './spec.ts';

export type TensorKind = 'param' | 'buffer';

export interface ExpectedTensor {
  name: string;
  shape: number[];
  kind: TensorKind;
  layer: number | null;
  optional?: boolean;
}

/** One template row of an architecture file. */
interface WeightTemplate {
  name: string;
  /** Integers or formulas over V, C, L, NH, NKV, HS, FF, P (e.g. "3*C", "NKV*HS", "HS/2"). */
  shape: (number | string)[];
  kind?: TensorKind;
  /** The tensor exists only when this ModelSpec boolean field (optionally negated with '!') holds. */
  when?: string;
  /** May be absent: always (true) or when this ModelSpec boolean field holds. */
  optional?: boolean | string;
}

interface ArchitectureFile {
  family: Family;
  model_types: string[];
  strip_prefixes?: string[];
  add_prefix?: { prefix: string; when_starts_with: string[] };
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

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function compile(file: ArchitectureFile): Architecture {
  const rows = (list: WeightTemplate[], perLayer: boolean): CompiledTemplate[] =>
    list.map((t) => ({
      ...t,
      perLayer,
      pattern: new RegExp(`^${t.name.split('${layer}').map(escapeRegExp).join('(\\d+)')}$`),
    }));
  return { file, all: [...rows(file.pre_weights, false), ...rows(file.layer_templates, true), ...rows(file.post_weights, false)] };
}

const ARCHITECTURES: Record<Family, Architecture> = {
  gpt2: compile(gpt2Json as ArchitectureFile),
  llama: compile(llamaJson as ArchitectureFile),
};

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
    out.push(row);
  };
  for (const t of arch.file.pre_weights) emit(t, null);
  for (let layer = 0; layer < spec.numLayers; layer++) for (const t of arch.file.layer_templates) emit(t, layer);
  for (const t of arch.file.post_weights) emit(t, null);
  return out;
}

/** The canonical name of a stored tensor name (GPT-2: strips `transformer.`; Llama: adds `model.` to bare LlamaModel names). */
export function canonicalName(family: Family, storedName: string): string {
  const file = ARCHITECTURES[family].file;
  for (const prefix of file.strip_prefixes ?? []) {
    if (storedName.startsWith(prefix)) return storedName.slice(prefix.length);
  }
  const add = file.add_prefix;
  if (add && add.when_starts_with.some((p) => storedName.startsWith(p))) return add.prefix + storedName;
  return storedName;
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
