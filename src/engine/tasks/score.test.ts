import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { folderFileSet } from '../../node/files.ts';
import { testRuntime } from '../../testing/gpu.ts';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint.ts';
import type { FloatDType } from '../io/dtypes.ts';
import { loadTokenizer, type TextTokenizer } from '../io/tokenizer.ts';
import { forwardWeights } from '../io/weights.ts';
import { decodeWeights, encodeWeights } from '../kernels/weights.ts';
import { taskArithmetic } from '../merge/reference.ts';
import { parseRecipe, type MergeRecipe } from '../merge/recipe.ts';
import { leadingIds } from '../model/evaluate.ts';
import { referenceForward } from '../model/reference.ts';
import { Workspace } from '../workspace/workspace.ts';
import { parseTaskFile } from './file.ts';
import { choiceSpan, prepareTask, promptWindow, type PreparedTask } from './prepare.ts';
import { choiceItemScore, choiceTaskScore, cutAtStop, generateItemScore, generateTaskScore, type TaskScore } from './score.ts';

/**
 * Task scores from the GPU (Workspace.scoreTasks: spanNll, greedy decoding with the KV cache)
 * against a float64 reference written here from the definitions: each choice's span scored by
 * referenceForward with a float64 log-softmax, each generative item decoded greedily with a full
 * float64 forward per step — for a checkpoint and for task-arithmetic merges (the merge in
 * float64, rounded to the checkpoint's dtype). acc, acc_norm, predictions and outputs must be
 * identical; per-item log-likelihoods within 1e-4 relative.
 */
const FIXTURES = new URL('../../../e2e/fixtures/', import.meta.url).pathname;
const CONTEXT = 48;
const MAX_TOKENS = 10;

async function fixture(name: string): Promise<Checkpoint> {
  return openCheckpoint(await folderFileSet(`${FIXTURES}${name}`), name);
}

async function float64Weights(ckpt: Checkpoint): Promise<Map<string, Float64Array>> {
  const out = new Map<string, Float64Array>();
  for (const t of forwardWeights(ckpt.spec)) {
    const ref = ckpt.tensors.get(t.name);
    if (ref) out.set(t.name, decodeWeights(await ckpt.read(t.name), ref.dtype as FloatDType));
  }
  return out;
}

/** base + Σ ω_i (ft_i − base) in float64, rounded to the stored dtype like the merge's output. */
async function mergedWeights(base: Checkpoint, fts: Checkpoint[], weights: number[]): Promise<Map<string, Float64Array>> {
  const b = await float64Weights(base);
  const models = await Promise.all(fts.map(float64Weights));
  const out = new Map<string, Float64Array>();
  for (const [name, values] of b) {
    const dtype = base.tensors.get(name)!.dtype as FloatDType;
    out.set(name, decodeWeights(encodeWeights(taskArithmetic(values, models.map((m) => m.get(name)!), weights, 1, false), dtype), dtype));
  }
  return out;
}

function logSoftmaxAt(logits: Float64Array, row: number, V: number, target: number): number {
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[row * V + v]!);
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(logits[row * V + v]! - max);
  return logits[row * V + target]! - max - Math.log(sum);
}

/** The float64 reference of every score: the same definitions, no GPU, no spanNll. */
function referenceScores(ckpt: Checkpoint, w: Map<string, Float64Array>, tokenizer: TextTokenizer, task: PreparedTask): TaskScore {
  const V = ckpt.spec.vocabSize;
  if (task.kind === 'choice') {
    const items = task.items.map((item) => {
      const loglik = item.choices.map((c) => {
        const { ids, from } = choiceSpan(c, CONTEXT);
        // The model sees ids[0..n−2]; row t's logits predict ids[t + 1].
        const { logits } = referenceForward(ckpt.spec, w, ids.slice(0, -1));
        let sum = 0;
        for (let t = from; t < ids.length; t++) sum += logSoftmaxAt(logits, t - 1, V, ids[t]!);
        return sum;
      });
      return choiceItemScore(item, loglik);
    });
    return choiceTaskScore(task.label, items);
  }
  const items = task.items.map((item) => {
    const seq = promptWindow(item.prompt, CONTEXT, MAX_TOKENS);
    const out: number[] = [];
    for (let s = 0; s < MAX_TOKENS; s++) {
      const { logits } = referenceForward(ckpt.spec, w, [...seq, ...out]);
      const row = seq.length + out.length - 1;
      let best = 0;
      for (let v = 1; v < V; v++) if (logits[row * V + v]! > logits[row * V + best]!) best = v;
      if (best === ckpt.spec.eosTokenId) break;
      out.push(best);
      if (item.stop.some((x) => tokenizer.decode(out).includes(x))) break;
    }
    return generateItemScore(item.line, cutAtStop(out.length ? tokenizer.decode(out) : '', item.stop), item.answer);
  });
  return generateTaskScore(task.label, items);
}

const TASK_FILES = ['cloze.jsonl', 'answer.jsonl'];
const text = (f: string): string => readFileSync(`${FIXTURES}tasks/${f}`, 'utf8');

function compare(name: string, got: TaskScore, want: TaskScore): void {
  expect(got.kind).toBe(want.kind);
  expect(got.n).toBe(want.n);
  if (got.kind === 'choice' && want.kind === 'choice') {
    let worst = 0;
    got.items.forEach((g, i) => {
      const r = want.items[i]!;
      expect([g.pred, g.predNorm, g.gold], `${name} line ${g.line}`).toEqual([r.pred, r.predNorm, r.gold]);
      g.loglik.forEach((l, k) => {
        const rel = Math.abs(l - r.loglik[k]!) / Math.abs(r.loglik[k]!);
        worst = Math.max(worst, rel);
        expect(rel, `${name} line ${g.line} choice ${k}: ${l} vs ${r.loglik[k]}`).toBeLessThanOrEqual(1e-4);
      });
    });
    expect([got.acc, got.accNorm]).toEqual([want.acc, want.accNorm]);
    console.log(`${name}: acc ${got.acc.toFixed(3)}, acc_norm ${got.accNorm.toFixed(3)} (${got.n} items); per-choice loglik worst relative error ${worst.toExponential(2)}`);
  } else if (got.kind === 'generate' && want.kind === 'generate') {
    expect(got.items.map((i) => i.output)).toEqual(want.items.map((i) => i.output));
    expect(got.exactMatch).toBe(want.exactMatch);
    console.log(`${name}: exact match ${got.exactMatch} (${got.n} items), outputs ${JSON.stringify(got.items.map((i) => i.output))}`);
  }
}

describe('task scores on the GPU vs the float64 reference', () => {
  const cases: { name: string; base: string; fts: [string, number][] }[] = [
    { name: 'tiny-gpt2', base: 'tiny-gpt2', fts: [] },
    { name: 'merge tiny-llama (BF16, GQA) + ft-a:0.7 + ft-b:0.4', base: 'tiny-llama', fts: [['tiny-llama-ft-a', 0.7], ['tiny-llama-ft-b', 0.4]] },
  ];
  for (const c of cases) {
    it(`${c.name}: acc, acc_norm, predictions and generated outputs identical; logliks within 1e-4 relative`, async () => {
      const ws = new Workspace({ runtime: () => testRuntime(), resident: c.fts.length > 0 });
      for (const k of [c.base, ...c.fts.map(([f]) => f)]) await ws.open(k, k, await folderFileSet(`${FIXTURES}${k}`));
      for (const f of TASK_FILES) await ws.addTask(f, f, text(f), c.base);
      // No models: the base alone (a literal recipe: the parser asks a merge for models).
      const recipe: MergeRecipe = c.fts.length
        ? parseRecipe({ version: 1, method: 'task_arithmetic', base: c.base, models: c.fts.map(([m, w]) => ({ model: m, parameters: { weight: w } })) })
        : { version: 1, method: 'task_arithmetic', base: c.base, models: [], parameters: {} };
      const got = await ws.scoreTasks({ recipe, tasks: TASK_FILES, context: CONTEXT, maxTokens: MAX_TOKENS, batchWindows: 4 });
      expect(got.mode).toBe(c.fts.length ? 'resident' : 'base');
      const base = ws.checkpoint(c.base);
      const tokenizer = await ws.tokenizer(c.base);
      const w = c.fts.length ? await mergedWeights(base, c.fts.map(([f]) => ws.checkpoint(f)), c.fts.map(([, x]) => x)) : await float64Weights(base);
      TASK_FILES.forEach((f, i) => {
        const prepared = prepareTask(tokenizer, parseTaskFile(text(f), f), leadingIds(tokenizer));
        compare(`${c.name} / ${f}`, got.tasks[i]!, referenceScores(base, w, tokenizer, prepared));
      });
      if (c.fts.length) {
        // The streamed merge (the CLI's default) scores with the same bits as the resident one.
        const streamed = new Workspace({ runtime: () => testRuntime() });
        for (const k of [c.base, ...c.fts.map(([f]) => f)]) await streamed.open(k, k, await folderFileSet(`${FIXTURES}${k}`));
        for (const f of TASK_FILES) await streamed.addTask(f, f, text(f), c.base);
        const again = await streamed.scoreTasks({ recipe, tasks: TASK_FILES, context: CONTEXT, maxTokens: MAX_TOKENS, batchWindows: 4 });
        expect(again.mode).toBe('streaming');
        expect(again.tasks.map(({ key: _key, ...t }) => t)).toEqual(got.tasks.map(({ key: _key, ...t }) => t));
      }
    });
  }

  it("scores one checkpoint's own tasks (referenceTasks) and refuses what does not fit the context", async () => {
    const ws = new Workspace({ runtime: () => testRuntime() });
    for (const k of ['tiny-gpt2', 'tiny-gpt2-ft-a']) await ws.open(k, k, await folderFileSet(`${FIXTURES}${k}`));
    await ws.addTask('cloze', 'cloze.jsonl', text('cloze.jsonl'), 'tiny-gpt2');
    const r = await ws.referenceTasks('tiny-gpt2-ft-a', ['cloze'], { context: CONTEXT });
    const ft = await fixture('tiny-gpt2-ft-a');
    const tokenizer = await loadTokenizer(ft.tokenizerJson);
    const prepared = prepareTask(tokenizer, parseTaskFile(text('cloze.jsonl'), 'cloze.jsonl'), []);
    compare('tiny-gpt2-ft-a (reference) / cloze.jsonl', r.tasks[0]!, referenceScores(ft, await float64Weights(ft), tokenizer, prepared));
    // "Dear team, …" choice 1 has 8 tokens: more than a context of 4.
    await expect(ws.referenceTasks('tiny-gpt2', ['cloze'], { context: 4 })).rejects.toThrow(/cloze\.jsonl: line \d+: choice \d has \d+ tokens, more than the context \(4\)/);
    await ws.addTask('answer', 'answer.jsonl', text('answer.jsonl'), 'tiny-gpt2');
    await expect(ws.referenceTasks('tiny-gpt2', ['answer'], { context: 8, maxTokens: 8 })).rejects.toThrow(/max tokens \(8\) must be less than the context \(8\)/);
    await expect(ws.scoreTasks({ recipe: { version: 1, method: 'task_arithmetic', base: 'tiny-gpt2', models: [], parameters: {} }, tasks: ['nope'] })).rejects.toThrow(/task file 'nope' is not loaded/);
  });
});
