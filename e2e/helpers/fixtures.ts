import { copyFile, mkdir, mkdtemp, readFile, readdir, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Fixture checkpoints committed under e2e/fixtures (made by their own script there). */
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
export const fixtureDir = (name: string): string => join(FIXTURES, name);

export async function fixtureFiles(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  const files: string[] = [];
  for (const name of names) if ((await stat(join(dir, name))).isFile()) files.push(join(dir, name));
  return files;
}

export async function readConfig(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
}

const num = (config: Record<string, unknown>, ...keys: string[]): number => {
  for (const key of keys) {
    const v = config[key];
    if (typeof v === 'number') return v;
  }
  throw new Error(`config.json has none of ${keys.join(', ')}`);
};
const opt = (config: Record<string, unknown>, key: string): number | undefined => (typeof config[key] === 'number' ? (config[key] as number) : undefined);

/**
 * Learned parameters implied by a Hugging Face config, counted the way `model.num_parameters()`
 * counts them (tied embeddings once). Written from the architectures' definitions
 * (transformers' modeling_gpt2.py / modeling_llama.py), independently of the engine.
 */
export function expectedParameterCount(config: Record<string, unknown>): number {
  const type = config.model_type;
  if (type === 'gpt2') {
    const V = num(config, 'vocab_size');
    const P = num(config, 'n_positions');
    const C = num(config, 'n_embd');
    const L = num(config, 'n_layer');
    const FF = opt(config, 'n_inner') ?? 4 * C;
    const block =
      2 * C + // ln_1 weight, bias
      C * 3 * C + 3 * C + // attn.c_attn (C, 3C) + bias
      C * C + C + // attn.c_proj
      2 * C + // ln_2
      C * FF + FF + // mlp.c_fc
      FF * C + C; // mlp.c_proj
    return V * C + P * C + L * block + 2 * C; // wte, wpe, blocks, ln_f; lm_head tied to wte
  }
  if (type === 'llama' || type === 'mistral' || type === 'qwen2' || type === 'phi3') {
    const V = num(config, 'vocab_size');
    const C = num(config, 'hidden_size');
    const L = num(config, 'num_hidden_layers');
    const NH = num(config, 'num_attention_heads');
    const NKV = opt(config, 'num_key_value_heads') ?? NH;
    const HS = opt(config, 'head_dim') ?? C / NH;
    const FF = num(config, 'intermediate_size');
    const attnBias = type === 'qwen2' ? true : config.attention_bias === true;
    const mlpBias = config.mlp_bias === true;
    const tied = config.tie_word_embeddings === true;
    const qkvBias = attnBias ? NH * HS + 2 * NKV * HS : 0;
    const oBias = attnBias && type !== 'qwen2' ? C : 0; // qwen2 has no o_proj bias
    const block =
      C + // input_layernorm
      C * NH * HS + 2 * C * NKV * HS + NH * HS * C + qkvBias + oBias + // q, k, v, o
      C + // post_attention_layernorm
      3 * C * FF + (mlpBias ? 2 * FF + C : 0); // gate, up, down
    // phi3 fuses q/k/v into qkv_proj and gate/up into gate_up_proj: the same counts.
    return V * C + L * block + C + (tied ? 0 : V * C); // embed_tokens, layers, norm, lm_head
  }
  if (type === 'phi3' || type === 'qwen3' || type === 'gemma2' || type === 'olmo2') {
    const V = num(config, 'vocab_size');
    const C = num(config, 'hidden_size');
    const L = num(config, 'num_hidden_layers');
    const NH = num(config, 'num_attention_heads');
    const NKV = opt(config, 'num_key_value_heads') ?? NH;
    // Qwen3Config and Gemma2Config default head_dim to 128 and 256, not C / NH.
    const HS = opt(config, 'head_dim') ?? (type === 'qwen3' ? 128 : type === 'gemma2' ? 256 : C / NH);
    const FF = num(config, 'intermediate_size');
    const bias = type !== 'phi3' && config.attention_bias === true;
    const tied = config.tie_word_embeddings === true || (type === 'gemma2' && config.tie_word_embeddings === undefined);
    const attention = C * NH * HS + 2 * C * NKV * HS + NH * HS * C + (bias ? NH * HS + 2 * NKV * HS + C : 0); // q, k, v, o (phi3: fused qkv_proj)
    // Phi-3, Qwen3: input + post-attention norms; Gemma 2: four; OLMo 2: two after the sub-blocks.
    const norms = (type === 'gemma2' ? 4 : 2) * C;
    // Qwen3: q_norm / k_norm over a head (HS each); OLMo 2: over the whole q and k projections.
    const qkNorms = type === 'qwen3' ? 2 * HS : type === 'olmo2' ? NH * HS + NKV * HS : 0;
    const block = attention + norms + qkNorms + 3 * C * FF; // gate, up, down (phi3: fused gate_up_proj)
    return V * C + L * block + C + (tied ? 0 : V * C);
  }
  throw new Error(`no parameter formula for model_type ${String(type)}`);
}

/**
 * A copy of a fixture folder in a fresh temp dir with `file` cut to `keep` of its size: its
 * header still parses but promises more bytes than the file has.
 */
export async function corruptCopy(dir: string, file: string, keep = 0.5): Promise<{ dir: string; files: string[] }> {
  const out = await mkdtemp(join(tmpdir(), 'dem-e2e-'));
  const copy = join(out, 'corrupt');
  await mkdir(copy);
  for (const src of await fixtureFiles(dir)) {
    await copyFile(src, join(copy, src.slice(dir.length + 1)));
  }
  const target = join(copy, file);
  const { size } = await stat(target);
  await truncate(target, Math.floor(size * keep));
  return { dir: copy, files: await fixtureFiles(copy) };
}
