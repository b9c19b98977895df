import type { Family, ModelSpec } from './spec.ts';

/** What `dem inspect` prints and the UI's checkpoint card shows (io/inspect.ts builds it). */
export interface TensorSummary {
  name: string;
  dtype: string; // safetensors dtype: F32, F16, BF16, I64, ...
  shape: number[];
  /** 'param': learned weight (counted); 'buffer': non-learned (GPT-2 attn.bias masks, inv_freq), listed not counted. */
  kind: 'param' | 'buffer' | 'unknown';
  file: string;
  bytes: number;
}

export interface CheckpointSummary {
  name: string;
  modelType: string;
  family: Family;
  spec: ModelSpec;
  /** Elements of 'param' tensors only. */
  parameterCount: number;
  /** Elements of 'buffer' tensors (not counted in parameterCount). */
  bufferCount: number;
  /** dtype -> number of elements stored in that dtype (params, buffers and unknown tensors). */
  dtypes: Record<string, number>;
  /** Bytes of tensor data (headers excluded). */
  totalBytes: number;
  /** Files read: config.json, the index if sharded, the .safetensors files, tokenizer.json if present. */
  files: string[];
  sharded: boolean;
  tensors: TensorSummary[];
  hasTokenizer: boolean;
  /** A LoRA adapter (PEFT) read over a base: its factors; `tensors` etc. describe the adapted model. */
  adapter?: LoraSummary;
  /** What sets the architecture apart (RoPE scaling, q/k norms, post-norms, soft caps, windows...), when anything does. */
  features?: string[];
}

export interface LoraSummary {
  base: string;
  /** Distinct ranks of the adapted matrices (rank_pattern can vary them). */
  ranks: number[];
  alpha: number;
  rslora: boolean;
  /** Adapted matrices (canonical names) and tensors replaced whole (modules_to_save). */
  targets: string[];
  replaced: string[];
  /** Bytes of the factors and replacements. */
  bytes: number;
}

/**
 * A PEFT adapter folder on its own, from adapter_config.json and the safetensors header (no base
 * read): what `dem inspect ADAPTER_DIR` prints (io/inspect.ts summariseAdapter).
 */
export interface PeftAdapterSummary {
  name: string;
  peftType: 'LORA';
  /** base_model_name_or_path, the base the adapter names (null when it names none). */
  base: string | null;
  r: number;
  alpha: number;
  rslora: boolean;
  /** Distinct ranks and scales s of the adapted matrices (rank_pattern / alpha_pattern can vary them). */
  ranks: number[];
  scales: number[];
  /** target_modules as configured: names, one regex, or null. */
  targetModules: string[] | string | null;
  /** Module paths that carry factors (without PEFT's prefix). */
  modules: string[];
  /** Layer indices those modules are in (PEFT's rule, layers_pattern-aware). */
  layers: number[];
  layersToTransform: number[] | null;
  modulesToSave: string[];
  /** Tensors replaced whole (modules_to_save, biases), by key without PEFT's prefix. */
  replaced: string[];
  tensorCount: number;
  /** Elements of every tensor in the file (factors and replacements). */
  parameterCount: number;
  /** Bytes of tensor data (header excluded). */
  bytes: number;
  /** dtype -> elements stored in it. */
  dtypes: Record<string, number>;
  tensors: { name: string; dtype: string; shape: number[]; bytes: number }[];
}
