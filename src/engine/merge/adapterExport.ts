import { InputError } from '../errors.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, PEFT_PREFIX, type BoundLoraTarget } from '../io/adapter.ts';
import { decodeToF32 } from '../io/dtypes.ts';
import { writeSafetensors, type TensorSpec } from '../io/safetensors.ts';
import { resolveTensorParams } from './coefficients.ts';
import type { MergeJob } from './execute.ts';
import { getMethod } from './registry.ts';

/**
 * The merge of LoRA adapters alone, as a PEFT adapter again: for a row-combine method
 * (task_arithmetic) the merged update of module M is Σ_j c_j s_j B_j A_j = B' A' with
 *   A' = [A_1; A_2; …]            (Σ r_j, in)   the factors stacked,
 *   B' = [c_1 s_1 B_1, c_2 s_2 B_2, …]  (out, Σ r_j)   the coefficients and scales folded in,
 * and scale 1 (lora_alpha = r per module, through rank_pattern / alpha_pattern where ranks
 * differ), which is exact up to the F32 rounding of the folded factors. c_j is the method's
 * per-tensor coefficient (λ, normalize and per-layer/filter weights resolved per tensor).
 * Refused (InputError): another method, a member that is not an adapter over the recipe's base,
 * adapters with modules_to_save (a dense replacement has no factored form).
 */
export async function mergeAdaptersAsPeft(job: MergeJob): Promise<Map<string, Uint8Array>> {
  const method = getMethod(job.recipe.method);
  if (!method.rowCombine) throw new InputError(`only a task_arithmetic merge of adapters is an adapter again ('${method.name}' is not one weighted sum)`);
  const bindings = job.models.map((m) => {
    if (!m.adapter) throw new InputError(`'${m.name}' is a full checkpoint: only a merge of LoRA adapters alone can be written as an adapter`);
    if (m.adapter.base !== job.base) throw new InputError(`adapter '${m.name}' is read over '${m.adapter.base.name}', not the merge's base '${job.base.name}'`);
    if (m.adapter.replaced.size) throw new InputError(`adapter '${m.name}' replaces whole tensors (modules_to_save: ${[...m.adapter.replaced].join(', ')}); that has no factored form`);
    return m.adapter;
  });
  const modules = new Map<string, { tensor: string; parts: { j: number; t: BoundLoraTarget }[] }>();
  bindings.forEach((b, j) => {
    for (const t of b.targets.values()) {
      const entry = modules.get(t.tensor) ?? { tensor: t.tensor, parts: [] };
      entry.parts.push({ j, t });
      modules.set(t.tensor, entry);
    }
  });
  const entries: (TensorSpec & { data: Uint8Array })[] = [];
  const ranks = new Map<string, number>();
  const numLayers = job.base.spec.numLayers;
  for (const { tensor, parts } of modules.values()) {
    const ref = job.base.tensors.get(tensor)!;
    const { weights, params } = resolveTensorParams(job.recipe, ref.storedName, ref.layer, numLayers);
    const { alpha, coefficients } = method.rowCombine(weights, params, { tensorIndex: 0, tensor: ref.storedName });
    if (alpha !== 1) throw new InputError(`merge method '${method.name}' scales the base; not an adapter`, { tensor: ref.storedName });
    const { out, in: inn } = parts[0]!.t;
    const R = parts.reduce((s, p) => s + p.t.rank, 0);
    const A = new Float32Array(R * inn);
    const B = new Float32Array(out * R);
    let row = 0;
    for (const { j, t } of parts) {
      const a = decodeToF32(await bindings[j]!.read(t.a), t.a.dtype);
      const b = decodeToF32(await bindings[j]!.read(t.b), t.b.dtype);
      A.set(a, row * inn);
      const f = coefficients[j]! * t.scale;
      for (let o = 0; o < out; o++) for (let k = 0; k < t.rank; k++) B[o * R + row + k] = f * b[o * t.rank + k]!;
      row += t.rank;
    }
    const module = parts[0]!.t.module;
    ranks.set(module, R);
    entries.push({ name: `${PEFT_PREFIX}${module}.lora_A.weight`, dtype: 'F32', shape: [R, inn], data: new Uint8Array(A.buffer) });
    entries.push({ name: `${PEFT_PREFIX}${module}.lora_B.weight`, dtype: 'F32', shape: [out, R], data: new Uint8Array(B.buffer) });
  }
  // The most common rank is r; the others go to rank_pattern/alpha_pattern (escaped: a key is a regex).
  const counts = new Map<number, number>();
  for (const r of ranks.values()) counts.set(r, (counts.get(r) ?? 0) + 1);
  const r = [...counts].sort((x, y) => y[1] - x[1] || x[0] - y[0])[0]?.[0] ?? 1;
  const pattern = Object.fromEntries([...ranks].filter(([, v]) => v !== r).map(([m, v]) => [m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), v]));
  const first = bindings[0]!.adapter.config;
  const config = {
    alpha_pattern: pattern,
    base_model_name_or_path: first.base_model_name_or_path ?? null,
    bias: 'none',
    fan_in_fan_out: first.fan_in_fan_out ?? false,
    inference_mode: true,
    lora_alpha: r,
    lora_dropout: 0,
    modules_to_save: null,
    peft_type: 'LORA',
    r,
    rank_pattern: pattern,
    target_modules: [...ranks.keys()],
    task_type: first.task_type ?? 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  };
  return new Map([
    [ADAPTER_CONFIG_FILE, new TextEncoder().encode(`${JSON.stringify(config, null, 2)}\n`)],
    [ADAPTER_WEIGHTS_FILE, writeSafetensors(entries, { format: 'pt' })],
  ]);
}
