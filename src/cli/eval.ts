import { basename, extname } from 'node:path';
import { parseArgs } from 'node:util';
import { checkContext, DEFAULT_MAX_TOKENS, defaultContext, InputError, type KeyedTaskScore } from '../engine/index.ts';
import { table } from './format.ts';
import { MERGE_HELP, MERGE_OPTIONS } from './mergeArgs.ts';
import { cancelOnSignals, Progress } from './progress.ts';
import { loadProgress, openModel, parseIntOption, readTextFile, stdout, withWorkspace, type CommandEnv } from './session.ts';

const HELP = `dem eval --model DIR --task FILE [--task FILE ...] [--context N] [--json]
dem eval --base DIR --model DIR[:WEIGHT] ... [merge options] --task FILE ...

Task scores on the GPU. A task file is JSON Lines, one item per line, one kind per file:
  multiple choice  {"context": "...", "choices": ["...", ...], "gold": 0}
  generative       {"prompt": "...", "answer": "...", "stop": ["\\n"]}   (stop optional)
Multiple choice (lm-evaluation-harness's rules): trailing whitespace of the context moves to
the continuation; a choice's log-likelihood is the sum of log p over its continuation tokens
given the context, cut from the left to --context + 1 tokens; acc: the gold choice has the
highest log-likelihood; acc_norm: highest per character; ties go to the lower index.
Generative: greedy decoding until a stop string, EOS or --max-tokens; exact match after
trimming whitespace. stderr = sqrt(p(1 - p)/(n - 1)).
With --base, the model is the merge the options describe, computed on the GPU in memory.

Options:
  --model DIR                the checkpoint to evaluate (without --base)
  --task FILE                a task file (.jsonl); repeat for several
  --context N                tokens the model sees at most (default: min(model positions, 1024))
  --max-tokens N             most new tokens per generative item (default ${DEFAULT_MAX_TOKENS})
  --batch N                  sequences per GPU dispatch (default 8)
  --resident                 merge through the studio's interactive path (base and distribution
                             vectors kept on the GPU) instead of tensor by tensor
  --json                     print {"tasks": [...]} with per-item log-likelihoods or outputs
  --quiet                    no progress lines on stderr

${MERGE_HELP}`;

/** What `--json` prints per task (multiple choice: acc, acc_norm; generative: exact_match). */
export function taskJson(name: string, t: KeyedTaskScore): Record<string, unknown> {
  if (t.kind === 'choice') {
    return { name, n: t.n, acc: t.acc, acc_norm: t.accNorm, stderr: t.stderr, items: t.items.map((i) => ({ loglik: i.loglik, pred: i.pred, gold: i.gold })) };
  }
  return { name, n: t.n, exact_match: t.exactMatch, stderr: t.stderr, items: t.items.map((i) => ({ output: i.output, gold: i.gold })) };
}

/** A task's name: its file name without the extension. */
export const taskName = (path: string): string => basename(path, extname(path));

export async function runEval(args: string[], env: CommandEnv = {}): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...MERGE_OPTIONS,
      task: { type: 'string', multiple: true },
      context: { type: 'string' },
      'max-tokens': { type: 'string' },
      batch: { type: 'string' },
      resident: { type: 'boolean' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const out = env.out ?? stdout;
  if (values.help) {
    out(`${HELP}\n`);
    return 0;
  }
  const signal = env.signal ?? cancelOnSignals();
  if (!values.task?.length) throw new InputError('at least one --task FILE is required');
  const batch = parseIntOption('batch', values.batch, 1) ?? 8;
  const maxTokens = parseIntOption('max-tokens', values['max-tokens'], 1) ?? DEFAULT_MAX_TOKENS;
  const contextArg = parseIntOption('context', values.context, 2);
  const tasks = values.task;

  const { model, context, results } = await withWorkspace(env, { label: 'dem-eval', resident: values.resident }, async (ws) => {
    const model = await openModel(ws, values, signal);
    const context = checkContext(model.spec, contextArg ?? defaultContext(model.spec));
    // Parse and tokenize every task file before touching the GPU: a bad line fails in milliseconds.
    for (const path of tasks) await ws.addTask(path, path, readTextFile(path), model.recipe.base);
    const showLoad = loadProgress(values.quiet, model.merged);
    let bar: Progress | undefined;
    const evaluation = await ws.scoreTasks(
      { recipe: model.recipe, tasks, context, batchWindows: batch, maxTokens },
      {
        signal,
        onProgress: (p) => {
          if (p.stage !== 'items') return showLoad(p);
          if (p.done === 0) bar = new Progress(`eval ${p.task}`, values.quiet);
          bar?.update(p.done, p.total, 'items');
        },
      },
    );
    return { model, context, results: evaluation.tasks };
  });

  if (values.json) {
    out(`${JSON.stringify({ tasks: results.map((r) => taskJson(taskName(r.key), r)) }, null, 2)}\n`);
  } else {
    const f = (x: number): string => (Number.isFinite(x) ? x.toFixed(4) : '-');
    out(`${model.name}, context ${context}\n`);
    out(
      `${table([
        ['task', 'kind', 'n', 'acc / exact_match', 'acc_norm', 'stderr'],
        ...results.map((r) =>
          r.kind === 'choice'
            ? [taskName(r.key), 'multiple choice', String(r.n), f(r.acc), f(r.accNorm), f(r.stderr)]
            : [taskName(r.key), 'generative', String(r.n), f(r.exactMatch), '', f(r.stderr)],
        ),
      ])}\n`,
    );
  }
  return 0;
}
