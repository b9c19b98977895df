/**
 * Writes e2e/fixtures/reference/train/<fixture>.batches.json: a fixed token stream (Debian's
 * Apache-2.0 licence text through the fixture tokenizer), the training settings, and the (B, T+1)
 * token ids of every step as src/engine/train/data.ts plans them. scripts/torch_train_reference.py
 * trains on exactly these batches; src/engine/train/trainer.test.ts checks the plan still matches.
 * For the LoRA check also <fixture>.lora.json (the selection and its learning rate) and
 * <fixture>.lora-init/, the trainer's initial factors as a PEFT adapter folder, which the PyTorch
 * run starts from.
 *   npx tsx scripts/train-reference-batches.ts
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { initLoraFactors, loadTokenizer, openCheckpoint, planBatches, planData, trainingParams, writeLoraAdapter, type LoraSelection } from '../src/engine/index.ts';
import { folderFileSet } from '../src/node/files.ts';

export const REFERENCE_SETTINGS = {
  steps: 50,
  batchSize: 4,
  seqLen: 16,
  lr: 3e-3,
  warmupSteps: 5,
  weightDecay: 0.01,
  minLrRatio: 0.1,
  heldOutFraction: 0,
  seed: 7,
};

/** The LoRA runs: GPT-2 on its attention and MLP input (Conv1D), Llama on q, v and down with rsLoRA. */
export const REFERENCE_LORA: Record<string, { selection: LoraSelection; lr: number }> = {
  'tiny-gpt2': { selection: { kind: 'lora', rank: 4, alpha: 8, targets: ['c_attn', 'c_fc'] }, lr: 1e-2 },
  'tiny-llama': { selection: { kind: 'lora', rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: true }, lr: 1e-2 },
};

const root = new URL('..', import.meta.url).pathname;
const text = (await readFile('/usr/share/common-licenses/Apache-2.0', 'utf8')).slice(0, 6000);
for (const fixture of ['tiny-gpt2', 'tiny-llama']) {
  const ck = await openCheckpoint(await folderFileSet(`${root}e2e/fixtures/${fixture}`), fixture);
  const tok = await loadTokenizer(ck.tokenizerJson);
  const tokens = tok.encode(text);
  const s = REFERENCE_SETTINGS;
  const plan = planData(tokens, s.seqLen, s.batchSize, s.heldOutFraction);
  const batches = planBatches(plan.windows.length, s.batchSize, s.steps, s.seed).map((b) => b.map((i) => Array.from(plan.windows[i]!)));
  const out = `${root}e2e/fixtures/reference/train/${fixture}.batches.json`;
  await writeFile(out, JSON.stringify({ fixture, settings: s, tokens: Array.from(tokens), batches }) + '\n');
  console.log(`${out}: ${tokens.length} tokens, ${plan.windows.length} windows, ${batches.length} batches`);

  const lora = REFERENCE_LORA[fixture]!;
  const { lora: factors } = trainingParams(ck.spec, (n) => ck.tensors.has(n), lora.selection);
  const init = writeLoraAdapter(ck, lora.selection, factors!, initLoraFactors(factors!, s.seed));
  const dir = `${root}e2e/fixtures/reference/train/${fixture}.lora-init`;
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of init) await writeFile(`${dir}/${name}`, bytes);
  await writeFile(`${root}e2e/fixtures/reference/train/${fixture}.lora.json`, JSON.stringify({ fixture, ...lora }, null, 1) + '\n');
  console.log(`${dir}: ${factors!.length} adapted matrices`);
}
