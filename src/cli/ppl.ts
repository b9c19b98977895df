import { parseArgs } from 'node:util';
import { checkContext, defaultContext, InputError, recipeToJson, type TextScore } from '../engine/index.ts';
import { table } from './format.ts';
import { MERGE_HELP, MERGE_OPTIONS } from './mergeArgs.ts';
import { cancelOnSignals, Progress } from './progress.ts';
import { loadProgress, openModel, parseIntOption, readTextFile, stdout, withWorkspace, type CommandEnv } from './session.ts';

export type { CommandEnv } from './session.ts';

const HELP = `dem ppl --model DIR --text FILE [--text FILE ...] [--context N] [--json]
dem ppl --base DIR --model DIR[:WEIGHT] ... [merge options] --text FILE ...

Validation perplexity per text on the GPU: the text is encoded without special tokens and split
into consecutive windows of --context tokens (the last may be shorter); each window predicts its
tokens 1..n-1; ppl = exp(total NLL / predicted tokens). When the model's tokenizer adds a BOS
(tokenizer_config.json add_bos_token, as Llama, Mistral and Gemma ship), it goes before each
window as context only, and every text token is predicted.
With --base, the model is the merge the options describe, computed on the GPU and evaluated in
memory (nothing is written); the --model folders are then the fine-tunes.

Options:
  --model DIR                the checkpoint to evaluate (without --base)
  --text FILE                a validation text (UTF-8); repeat for several
  --context N                window length (default: min(model positions, 1024), minus one with a BOS)
  --batch N                  windows per GPU dispatch (default 8)
  --resident                 merge through the studio's interactive path (base and distribution
                             vectors kept on the GPU) instead of tensor by tensor
  --json                     print the results as JSON
  --quiet                    no progress lines on stderr

${MERGE_HELP}`;

export function pplJson(r: TextScore): Record<string, unknown> {
  return { text: r.label, tokens: r.tokens, predicted: r.predicted, context: r.context, nll_sum: r.nllSum, nll_mean: r.nllMean, ppl: r.ppl, ids_head: r.idsHead };
}

export async function runPpl(args: string[], env: CommandEnv = {}): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...MERGE_OPTIONS,
      text: { type: 'string', multiple: true },
      context: { type: 'string' },
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
  if (!values.text?.length) throw new InputError('at least one --text FILE is required');
  const batch = parseIntOption('batch', values.batch, 1) ?? 8;
  const contextArg = parseIntOption('context', values.context, 2);
  const texts = values.text;

  const { model, results, mode } = await withWorkspace(env, { label: 'dem-ppl', resident: values.resident }, async (ws) => {
    const model = await openModel(ws, values, signal);
    const bos = (await ws.tokenizer(model.recipe.base)).bos !== undefined;
    const context = checkContext(model.spec, contextArg ?? defaultContext(model.spec, bos), bos);
    // Encode every text before touching the GPU: an empty or missing file fails in milliseconds.
    for (const path of texts) await ws.addText(path, path, readTextFile(path), model.recipe.base);
    const showLoad = loadProgress(values.quiet, model.merged);
    let bar: Progress | undefined;
    const evaluation = await ws.evaluate(
      { recipe: model.recipe, texts, context, batchWindows: batch },
      {
        signal,
        onProgress: (p) => {
          if (p.stage !== 'windows') return showLoad(p);
          if (p.done === 0) bar = new Progress(`ppl ${p.text}`, values.quiet);
          bar?.update(p.done, p.total, `windows of ${context}`);
        },
      },
    );
    return { model, results: evaluation.texts, mode: evaluation.mode };
  });

  const context = results[0]!.context;
  if (values.json) {
    const json = { model: model.name, ...(model.merged ? { recipe: JSON.parse(recipeToJson(model.recipe)) as unknown } : {}), mode, context, texts: results.map(pplJson) };
    out(`${JSON.stringify(json, null, 2)}\n`);
  } else {
    out(`${model.name}, context ${context}\n`);
    out(
      `${table([
        ['text', 'tokens', 'predicted', 'nll_mean', 'ppl'],
        ...results.map((r) => [r.label, String(r.tokens), String(r.predicted), r.nllMean.toFixed(6), r.ppl.toFixed(4)]),
      ])}\n`,
    );
  }
  return 0;
}
