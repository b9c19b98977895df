/**
 * Training a LoRA adapter: per targeted projection matrix W two trainable factors, A (r, in) and
 * B (out, r), W frozen; the projection becomes y = x·W + s·(x·Aᵀ)·Bᵀ (W in the family's layout:
 * Conv1D (in, out) or nn.Linear (out, in); the factors are PEFT's in both), s = alpha / r, or
 * alpha / √r with rsLoRA. Initialised as PEFT's default does: A uniform in ±1/√in (kaiming-uniform
 * with a = √5), B zeros, so step 0 is the base. Targets are PEFT module names (the last part of
 * the module path: c_attn, q_proj, gate_up_proj, …) of the family's block matrices; the result is
 * a PEFT adapter folder that io/adapter.ts reads back.
 */
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, PEFT_PREFIX } from '../io/adapter.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { InputError } from '../errors.ts';
import { architecture, storedName } from '../io/weights.ts';
import type { WeightRole } from '../io/roles.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import type { ModelSpec } from '../io/spec.ts';
import { mulberry32 } from '../random.ts';
import type { ParamInfo } from './model.ts';

/** The block matrices a LoRA may adapt (norms, biases, embeddings and the head are left out). */
const MATRIX_ROLES: ReadonlySet<WeightRole> = new Set(['attn.qkv', 'attn.q', 'attn.k', 'attn.v', 'attn.o', 'mlp.gate_up', 'mlp.gate', 'mlp.up', 'mlp.down']);

export interface LoraSelection {
  kind: 'lora';
  rank: number;
  alpha: number;
  /** PEFT module names of the family (`loraTargetNames`), e.g. ['c_attn'] or ['q_proj', 'v_proj']. */
  targets: string[];
  /** s = alpha / √r instead of alpha / r. */
  rslora?: boolean;
}

/** One adapted matrix and its two factors' graph parameters. */
export interface LoraFactor {
  /** The base weight's canonical name. */
  target: string;
  /** PEFT's module path: the stored name without `.weight` (GPT-2 keeps `transformer.`). */
  module: string;
  a: ParamInfo;
  b: ParamInfo;
  rank: number;
  in: number;
  out: number;
  scale: number;
}

/** PEFT's module name of a block matrix: the last part of its module path. */
const moduleName = (name: string): string => name.replace(/\.weight$/, '').split('.').at(-1)!;

/** The module names a LoRA can target in this family, in table order (e.g. GPT-2: c_attn, c_proj, c_fc). */
export function loraTargetNames(spec: ModelSpec): string[] {
  const names = architecture(spec.family)
    .layer_templates.filter((t) => t.role !== undefined && MATRIX_ROLES.has(t.role))
    .map((t) => moduleName(t.name));
  return [...new Set(names)];
}

export const loraScale = (sel: Pick<LoraSelection, 'rank' | 'alpha' | 'rslora'>): number => (sel.rslora ? sel.alpha / Math.sqrt(sel.rank) : sel.alpha / sel.rank);

/** The factors of `sel` over the base's parameters, in model order; refuses bad ranks and unknown targets by name. */
export function loraFactors(spec: ModelSpec, params: readonly ParamInfo[], sel: LoraSelection): LoraFactor[] {
  if (!Number.isInteger(sel.rank) || sel.rank < 1) throw new InputError(`LoRA rank must be a positive integer, got ${sel.rank}`);
  if (!(Number.isFinite(sel.alpha) && sel.alpha > 0)) throw new InputError(`LoRA alpha must be > 0, got ${sel.alpha}`);
  const known = loraTargetNames(spec);
  if (sel.targets.length === 0) throw new InputError(`choose at least one LoRA target (${spec.modelType}: ${known.join(', ')})`);
  const unknown = sel.targets.filter((t) => !known.includes(t));
  if (unknown.length) throw new InputError(`LoRA target(s) ${unknown.map((t) => `'${t}'`).join(', ')} are not modules of ${spec.modelType} (${known.join(', ')})`);
  const conv1d = architecture(spec.family).layout === 'conv1d';
  const scale = loraScale(sel);
  const out: LoraFactor[] = [];
  for (const p of params) {
    if (!MATRIX_ROLES.has(p.role) || !sel.targets.includes(moduleName(p.name))) continue;
    const [o, i] = conv1d ? [p.shape[1]!, p.shape[0]!] : [p.shape[0]!, p.shape[1]!];
    if (sel.rank > Math.min(o, i)) throw new InputError(`LoRA rank ${sel.rank} exceeds ${p.name}'s smaller side ${Math.min(o, i)}`);
    const module = storedName(spec.family, p.name).replace(/\.weight$/, '');
    out.push({
      target: p.name,
      module,
      a: { name: `${module}.lora_A.weight`, shape: [sel.rank, i], role: p.role },
      b: { name: `${module}.lora_B.weight`, shape: [o, sel.rank], role: p.role },
      rank: sel.rank,
      in: i,
      out: o,
      scale,
    });
  }
  return out;
}

/** The factors as the graph's extra parameters (A then B per target), each marked with what it adapts. */
export function loraParams(factors: readonly LoraFactor[]): ParamInfo[] {
  return factors.flatMap((f) => [
    { ...f.a, lora: { target: f.target, factor: 'A' as const, scale: f.scale } },
    { ...f.b, lora: { target: f.target, factor: 'B' as const, scale: f.scale } },
  ]);
}

/** PEFT's initial values from the seeded PRNG: A uniform in ±1/√in, B zeros (so the adapted model starts as the base). */
export function initLoraFactors(factors: readonly LoraFactor[], seed: number): Map<string, Float32Array> {
  // A stream of its own (not the data order's), fixed by the run's seed.
  const rand = mulberry32((seed ^ 0x4c6f5241) >>> 0);
  const out = new Map<string, Float32Array>();
  for (const f of factors) {
    const bound = 1 / Math.sqrt(f.in);
    const a = new Float32Array(f.rank * f.in);
    for (let i = 0; i < a.length; i++) a[i] = (2 * rand() - 1) * bound;
    out.set(f.a.name, a);
    out.set(f.b.name, new Float32Array(f.out * f.rank));
  }
  return out;
}

/** The trained factors as a PEFT adapter folder (adapter_config.json, adapter_model.safetensors, F32) over `base`. */
export function writeLoraAdapter(base: Checkpoint, sel: LoraSelection, factors: readonly LoraFactor[], weights: ReadonlyMap<string, Float32Array>, metadata: Record<string, string> = {}): Map<string, Uint8Array> {
  const entries = factors.flatMap((f) =>
    [f.a, f.b].map((p, k) => {
      const data = weights.get(p.name);
      if (!data) throw new Error(`no values for LoRA factor ${p.name}`);
      return { name: `${PEFT_PREFIX}${f.module}.lora_${k === 0 ? 'A' : 'B'}.weight`, dtype: 'F32' as const, shape: p.shape, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    }),
  );
  const config = {
    base_model_name_or_path: base.name,
    bias: 'none',
    // PEFT sets it for GPT-2's Conv1D (weights stored (in, out)); the factors are (r, in) and (out, r) either way.
    fan_in_fan_out: architecture(base.spec.family).layout === 'conv1d',
    inference_mode: true,
    lora_alpha: sel.alpha,
    lora_dropout: 0,
    modules_to_save: null,
    peft_type: 'LORA',
    r: sel.rank,
    target_modules: [...sel.targets],
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: sel.rslora === true,
  };
  return new Map([
    [ADAPTER_CONFIG_FILE, new TextEncoder().encode(`${JSON.stringify(config, null, 2)}\n`)],
    [ADAPTER_WEIGHTS_FILE, writeSafetensors(entries, { format: 'pt', ...metadata })],
  ]);
}
