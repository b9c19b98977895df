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
  /** What sets the architecture apart (RoPE scaling, q/k norms, post-norms, soft caps, windows...), when anything does. */
  features?: string[];
}
