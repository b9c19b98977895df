/**
 * `npm run make-demo-tasks` (also the last step of `npm run make-demo`): the demo's task files and
 * its DEM-vs-mixing table, for whatever models public/demo holds.
 *
 * 1. Task files from held-out data, one per distribution (public/demo/tasks/<id>.jsonl): the
 *    test documents the demo holds out of pretraining, fine-tuning and validation
 *    (scripts/demo/corpora.ts), minus everything in the validation texts that choose DEM's weights — cloze items for prose and email (the last word
 *    of a sentence among four), Python continuations (the rest of a line among four, given the two
 *    lines before), arithmetic answers (generative: "a + b =" → the value).
 * 2. Every demo model scored on them and on the validation texts: the base, each fine-tune, the
 *    data-mixing baseline and each merge of DEM's grid (the grid make-demo searched, read from the
 *    manifest) — on the CPU with the engine's own scoring code (cpuTasks.ts, cpuPpl.ts), the
 *    perplexity-chosen merge cross-checked on the GPU with the engine's Workspace (the studio's
 *    numbers).
 * 3. The table (engine: tasks/comparison.ts) — per-distribution perplexity and task score of data
 *    mixing, the perplexity-chosen DEM merge, the best single fine-tune and the base, DEM's relative
 *    improvement, tokens trained — and the grid's rank correlation between perplexity and score,
 *    recorded in manifest.json (`tasks`, and `task` per distribution), whichever method wins.
 *
 * Needs public/demo/manifest.json from make-demo (checkpoints with roles and tokensSeen,
 * distributions with validation texts). Options: --items N (per task, default 32), --skip-gpu-check.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  comparisonMarkdown,
  comparisonCsv,
  comparisonTable,
  defaultContext,
  DEFAULT_METHOD,
  headlineMetric,
  headlineScore,
  leadingIds,
  loadTokenizer,
  mulberry32,
  parseRecipe,
  parseTaskFile,
  prepareTask,
  rankCorrelation,
  scoreTask,
  Workspace,
  type Checkpoint,
  type MeasuredModel,
  type PreparedTask,
  type TaskScore,
} from '../../src/engine/index.ts';
import { folderFileSet } from '../../src/node/files.ts';
import { createNodeRuntime } from '../../src/node/gpu.ts';
import { loadDistributions, type Distribution } from './corpora.ts';
import { CORPUS } from './settings.ts';
import { cpuScorer, openFolder, taskArithmetic, weightsOf } from './cpuPpl.ts';
import { cpuTaskScorer } from './cpuTasks.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const DEMO = join(ROOT, 'public', 'demo');
const SEED = 20240618;

interface ManifestCheckpoint {
  name: string;
  path: string;
  role: 'base' | 'fine-tune' | 'mixing';
  distribution?: string;
  tokensSeen?: number;
}
interface Manifest {
  distributions: { id: string; title?: string; validation: string; task?: string }[];
  checkpoints: ManifestCheckpoint[];
  evaluation?: { merges?: { all?: { weights: Record<string, number> }[] } };
  tasks?: unknown;
  [key: string]: unknown;
}

// ---- 1. task items from held-out text --------------------------------------------------------

type Item = { context: string; choices: string[]; gold: number } | { prompt: string; answer: string; stop: string[] };

function shuffle<T>(xs: readonly T[], rand: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Four choices: the answer at a random place among three distinct distractors from `pool`. */
function choiceItem(context: string, answer: string, pool: readonly string[], rand: () => number): Item | null {
  // Distractors start like the answer (with or without a space), so the boundary gives nothing away.
  const alike = pool.filter((p) => p !== answer && p.startsWith(' ') === answer.startsWith(' '));
  const near = shuffle(alike.filter((p) => Math.abs(p.length - answer.length) <= 2), rand);
  const others = [...new Set(near.length >= 3 ? near : shuffle(alike, rand))].slice(0, 3);
  if (others.length < 3) return null;
  const gold = Math.floor(rand() * 4);
  const choices = [...others];
  choices.splice(gold, 0, answer);
  return { context, choices, gold };
}

const squash = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** Cloze: a sentence of the held-out text without its last word; choices are last words of other sentences. */
function clozeItems(text: string, validation: string, n: number, rand: () => number): Item[] {
  const seen = squash(validation);
  const sentences = squash(text)
    .split(/(?<=[.!?])\s+(?=["'A-Z])/)
    .filter((s) => s.length <= 160 && !seen.includes(s) && !/[>@<|]|https?:|\d{3}/.test(s))
    .map((s) => /^(.*\S)\s+([A-Za-z]{3,})[.!?]["']?$/.exec(s))
    .filter((m): m is RegExpExecArray => m !== null && m[1]!.split(' ').length >= 5);
  const pool = [...new Set(sentences.map((m) => ` ${m[2]!}`))];
  const items: Item[] = [];
  for (const m of shuffle(sentences, rand)) {
    const item = choiceItem(m[1]!, ` ${m[2]!}`, pool, rand);
    if (item) items.push(item);
    if (items.length === n) break;
  }
  return items;
}

/** Python continuations: two lines and the start of a third; choices are the rest of that line or of others. */
function codeItems(text: string, validation: string, train: string, n: number, rand: () => number): Item[] {
  const known = new Set([...validation.split('\n'), ...train.split('\n')].map((l) => l.trim()).filter((l) => l.length > 0));
  const lines = text.split('\n');
  const cands: { context: string; rest: string }[] = [];
  for (let i = 2; i < lines.length; i++) {
    const line = lines[i]!;
    const body = line.trim();
    if (body.length < 16 || body.length > 72 || body.startsWith('#') || known.has(body) || !lines[i - 1]!.trim()) continue;
    const indent = line.length - line.trimStart().length;
    // Cut after the first '(' or '= ' at least 3 characters in, leaving at least 4 to complete.
    const at = [line.indexOf('(', indent + 3), line.indexOf('= ', indent + 3)].filter((k) => k >= 0 && line.length - k >= 5);
    if (at.length === 0) continue;
    const cut = Math.min(...at) + 1;
    cands.push({ context: `${lines[i - 2]}\n${lines[i - 1]}\n${line.slice(0, cut)}`, rest: line.slice(cut) });
  }
  const pool = [...new Set(cands.map((c) => c.rest))];
  const items: Item[] = [];
  for (const c of shuffle(cands, rand)) {
    if (c.context.length > 200) continue;
    const item = choiceItem(c.context, c.rest, pool, rand);
    if (item) items.push(item);
    if (items.length === n) break;
  }
  return items;
}

/** Arithmetic answers: two held-out equations as context, then "a op b =" → the value (stop at the line end). */
function arithmeticItems(text: string, validation: string, train: string, n: number, rand: () => number): Item[] {
  const known = new Set([...validation.split('\n'), ...train.split('\n')]);
  const lines = text.split('\n').filter((l) => /^.+ = -?\d+$/.test(l) && !known.has(l));
  const items: Item[] = [];
  for (let i = 2; i < lines.length && items.length < n; i += 3) {
    const [lhs, value] = lines[i]!.split(' = ') as [string, string];
    items.push({ prompt: `${lines[i - 2]}\n${lines[i - 1]}\n${lhs} =`, answer: value, stop: ['\n'] });
  }
  return shuffle(items, rand);
}

interface TaskFileRecord {
  distribution: string;
  path: string;
  kind: 'choice' | 'generate';
  metric: 'acc' | 'exact_match';
  items: number;
  made: string;
}

function writeTaskFiles(manifest: Manifest, n: number, log: (line: string) => void): TaskFileRecord[] {
  // Held-out documents: the test documents (in no pretraining, fine-tuning or validation text),
  // read further than make-demo's test texts; every line of the pretraining and fine-tuning text
  // is excluded besides.
  const held: Distribution[] = loadDistributions({ ...CORPUS, testBytes: 80_000 });
  const rand = mulberry32(SEED);
  mkdirSync(join(DEMO, 'tasks'), { recursive: true });
  const out: TaskFileRecord[] = [];
  for (const d of manifest.distributions) {
    const h = held.find((x) => x.id === d.id);
    if (!h) throw new Error(`no held-out source for distribution '${d.id}' (scripts/demo/corpora.ts has ${held.map((x) => x.id).join(', ')})`);
    const validation = readFileSync(join(DEMO, d.validation), 'utf8');
    const trained = [h.train, ...h.pretrain].join('\n\n');
    const [items, made] =
      d.id === 'arithmetic'
        ? [arithmeticItems(h.test, validation, trained, n, rand), 'generative: two held-out equations, then "a op b =" → the value, stop at the line end']
        : d.id === 'code'
          ? [codeItems(h.test, validation, trained, n, rand), 'multiple choice: two lines of a held-out module and the start of the next; the rest of that line among 3 rests of other lines']
          : [clozeItems(h.test, validation, n, rand), 'multiple choice (cloze): a held-out sentence without its last word; that word among 3 last words of other sentences'];
    if (items.length < Math.min(n, 8)) throw new Error(`${d.id}: only ${items.length} task items from the held-out text`);
    const path = `tasks/${d.id}.jsonl`;
    writeFileSync(join(DEMO, path), `${items.map((i) => JSON.stringify(i)).join('\n')}\n`);
    const kind = 'prompt' in items[0]! ? 'generate' : 'choice';
    out.push({ distribution: d.id, path, kind, metric: headlineMetric(kind), items: items.length, made: `${made}; not in the validation text or any training text` });
    log(`${path}: ${items.length} ${kind === 'choice' ? 'multiple-choice' : 'generative'} items`);
  }
  return out;
}

// ---- 2. scoring ----------------------------------------------------------------------------

interface Measured {
  ppl: Record<string, number>;
  score: Record<string, number>;
  tasks: Record<string, TaskScore>;
}

const mean = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0) / Object.values(r).length;

export interface MakeDemoTasksOptions {
  items?: number;
  gpuCheck?: boolean;
  log?: (line: string) => void;
}

export async function makeDemoTasks(options: MakeDemoTasksOptions = {}): Promise<void> {
  const log = options.log ?? ((line: string) => console.log(line));
  const manifest = JSON.parse(readFileSync(join(DEMO, 'manifest.json'), 'utf8')) as Manifest;
  const files = writeTaskFiles(manifest, options.items ?? 32, log);
  const dists = manifest.distributions;

  const baseEntry = manifest.checkpoints.find((c) => c.role === 'base');
  const mixEntry = manifest.checkpoints.find((c) => c.role === 'mixing');
  const ftEntries = manifest.checkpoints.filter((c) => c.role === 'fine-tune');
  if (!baseEntry || ftEntries.length === 0) throw new Error('manifest.json needs a base and fine-tunes (run npm run make-demo first)');
  const ftOf = (dist: string): ManifestCheckpoint | undefined => ftEntries.find((c) => c.distribution === dist);
  const base: Checkpoint = await openFolder(join(DEMO, baseEntry.path));
  const spec = base.spec;
  const context = defaultContext(spec);
  const tokenizer = await loadTokenizer(base.tokenizerJson);
  const prepared = new Map<string, PreparedTask>(files.map((f) => [f.distribution, prepareTask(tokenizer, parseTaskFile(readFileSync(join(DEMO, f.path), 'utf8'), f.path.split('/').pop()!), leadingIds(tokenizer))]));
  const validation = dists.map((d) => tokenizer.encode(readFileSync(join(DEMO, d.validation), 'utf8')));
  const ppls = await cpuScorer(spec, (n) => base.tensors.has(n), context);
  const tasks = await cpuTaskScorer(spec, (n) => base.tensors.has(n), context);
  const weights = new Map<string, Map<string, Float32Array>>();
  for (const c of [baseEntry, ...ftEntries, ...(mixEntry ? [mixEntry] : [])]) weights.set(c.name, await weightsOf(await openFolder(join(DEMO, c.path)), ppls.params));

  const measure = async (w: ReadonlyMap<string, Float32Array>): Promise<Measured> => {
    const p = await ppls.perplexities(w, validation);
    const model = tasks.model(w);
    const out: Measured = { ppl: {}, score: {}, tasks: {} };
    for (const [i, d] of dists.entries()) {
      out.ppl[d.id] = p[i]!;
      const s = await scoreTask(model, tokenizer, prepared.get(d.id)!, { context, stopTokens: spec.eosTokenId === undefined ? [] : [spec.eosTokenId] });
      out.tasks[d.id] = s;
      out.score[d.id] = headlineScore(s);
    }
    return out;
  };
  const fmt = (m: Measured): string => `mean ppl ${mean(m.ppl).toFixed(3)}, mean score ${mean(m.score).toFixed(3)} (${dists.map((d) => `${d.id} ${m.score[d.id]!.toFixed(3)}`).join(', ')})`;

  const models: Record<string, Measured> = {};
  for (const [name, w] of weights) {
    models[name] = await measure(w);
    log(`${name}: ${fmt(models[name])}`);
  }
  // DEM's grid: the one make-demo searched when the manifest has it, else every ω in {0.5, 1} and
  // all-ones scaled by 0.25 … 1.5.
  const recorded = manifest.evaluation?.merges?.all?.map((m) => m.weights);
  const grid: Record<string, number>[] = recorded?.length
    ? recorded
    : [
        ...dists.reduce<number[][]>((acc) => acc.flatMap((c) => [0.5, 1].map((x) => [...c, x])), [[]]),
        ...[0.25, 0.75, 1.25, 1.5].map((x) => dists.map(() => x)),
      ].map((ws) => Object.fromEntries(dists.map((d, i) => [d.id, ws[i]!])));
  const fts = dists.map((d) => weights.get(ftOf(d.id)?.name ?? '') ?? null);
  if (fts.some((w) => w === null)) throw new Error(`every distribution needs its fine-tune in manifest.json (${dists.map((d) => d.id).join(', ')})`);
  const points: ({ weights: Record<string, number> } & Measured)[] = [];
  for (const g of grid) {
    const m = await measure(taskArithmetic(weights.get(baseEntry.name)!, fts as Map<string, Float32Array>[], dists.map((d) => g[d.id] ?? 0)));
    points.push({ weights: g, ...m });
    log(`DEM ω = (${dists.map((d) => g[d.id]).join(', ')}): ${fmt(m)}`);
  }
  await ppls.release();
  await tasks.release();
  const chosen = points.reduce((a, b) => (mean(b.ppl) < mean(a.ppl) ? b : a));
  const topScore = points.reduce((a, b) => (mean(b.score) > mean(a.score) ? b : a));
  const rho = rankCorrelation(points.map((p) => mean(p.ppl)), points.map((p) => mean(p.score)));

  // ---- the studio's numbers: the chosen merge on the GPU through the engine's Workspace ----
  let gpuCheck: Record<string, unknown> = { skipped: true };
  if (options.gpuCheck !== false) {
    const rt = await createNodeRuntime({ label: 'make-demo-tasks' });
    try {
      const ws = new Workspace({ runtime: async () => rt });
      for (const c of [baseEntry, ...ftEntries]) await ws.open(c.name, c.name, await folderFileSet(join(DEMO, c.path)));
      for (const f of files) await ws.addTask(f.distribution, f.path.split('/').pop()!, readFileSync(join(DEMO, f.path), 'utf8'), baseEntry.name);
      const recipe = parseRecipe({ version: 1, method: DEFAULT_METHOD, base: baseEntry.name, models: dists.map((d) => ({ model: ftOf(d.id)!.name, parameters: { weight: chosen.weights[d.id] ?? 0 } })) });
      const t0 = Date.now();
      const r = await ws.scoreTasks({ recipe, tasks: dists.map((d) => d.id), context });
      let worst = 0;
      const mismatches: string[] = [];
      for (const s of r.tasks) {
        const cpu = chosen.tasks[s.key]!;
        if (headlineScore(s) !== headlineScore(cpu)) mismatches.push(`${s.key}: GPU ${headlineScore(s)} vs CPU ${headlineScore(cpu)}`);
        if (s.kind === 'choice' && cpu.kind === 'choice') {
          s.items.forEach((it, i) => it.loglik.forEach((l, k) => (worst = Math.max(worst, Math.abs(l - cpu.items[i]!.loglik[k]!) / Math.abs(cpu.items[i]!.loglik[k]!)))));
        }
      }
      gpuCheck = { merge: chosen.weights, scores: Object.fromEntries(r.tasks.map((s) => [s.key, headlineScore(s)])), worstLoglikRelativeDifference: worst, seconds: Math.round((Date.now() - t0) / 1000) };
      log(`GPU cross-check of the chosen merge: ${JSON.stringify(gpuCheck)}`);
      if (mismatches.length || !(worst < 1e-3)) throw new Error(`the CPU evaluator and the engine disagree: ${mismatches.join('; ') || `loglik relative difference ${worst}`}`);
    } finally {
      rt.destroy();
    }
  }

  // ---- 3. the table ----
  const measured = (name: string, m: Measured, tokens?: number): MeasuredModel => ({ name, ppl: m.ppl, score: m.score, tokens });
  const table = comparisonTable({
    distributions: dists.map((d) => ({ id: d.id, name: d.id, metric: files.find((f) => f.distribution === d.id)!.metric })),
    mixing: mixEntry ? measured(mixEntry.name, models[mixEntry.name]!, mixEntry.tokensSeen) : null,
    dem: measured(`ω ${dists.map((d) => `${d.id} ${chosen.weights[d.id]}`).join(', ')}`, chosen),
    fineTunes: ftEntries.map((c) => measured(c.name, models[c.name]!, c.tokensSeen)),
    base: measured(baseEntry.name, models[baseEntry.name]!, 0),
    searchPoints: points.length,
    validationTokens: validation.reduce((n, ids) => n + ids.length, 0),
  });
  const markdown = comparisonMarkdown(table);
  const round = (r: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v.toPrecision(6))]));
  manifest.distributions = dists.map((d) => ({ ...d, task: files.find((f) => f.distribution === d.id)!.path }));
  manifest.tasks = {
    generatedBy: 'npm run make-demo-tasks (scripts/demo/tasks.ts)',
    generatedAt: new Date().toISOString(),
    note:
      'Task scores as the studio and dem eval define them (lm-evaluation-harness conventions: acc for multiple choice, exact match for generative), at the studio defaults (context ' +
      `${context}, at most 32 new tokens). The grid is make-demo's; DEM's merge is the grid point with the lowest mean validation perplexity. Scored on the CPU with the engine's scoring code over onnxruntime's inference graph; the chosen merge cross-checked on the GPU (gpuCheck).`,
    files,
    context,
    models: Object.fromEntries(Object.entries(models).map(([k, m]) => [k, { ppl: round(m.ppl), score: round(m.score) }])),
    search: {
      points: points.map((p) => ({ weights: p.weights, ppl: round(p.ppl), score: round(p.score), meanPpl: Number(mean(p.ppl).toPrecision(6)), meanScore: Number(mean(p.score).toPrecision(6)) })),
      rankCorrelation: rho,
      chosenByPerplexity: { weights: chosen.weights, meanPpl: mean(chosen.ppl), meanScore: mean(chosen.score) },
      bestByScore: { weights: topScore.weights, meanPpl: mean(topScore.ppl), meanScore: mean(topScore.score) },
    },
    gpuCheck,
    table,
    markdown,
    csv: comparisonCsv(table),
  };
  writeFileSync(join(DEMO, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`\nDEM vs data mixing (context ${context}); Spearman ρ(mean ppl, mean score) over ${points.length} merges: ${rho.toFixed(3)}\n\n${markdown}`);
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const { values } = parseArgs({ options: { items: { type: 'string' }, 'skip-gpu-check': { type: 'boolean' } } });
  const started = Date.now();
  makeDemoTasks({ items: values.items === undefined ? undefined : Number(values.items), gpuCheck: !values['skip-gpu-check'] }).then(
    () => {
      console.log(`make-demo-tasks: done in ${Math.round((Date.now() - started) / 1000)} s`);
      process.exit(0);
    },
    (e: unknown) => {
      console.error(`make-demo-tasks failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
