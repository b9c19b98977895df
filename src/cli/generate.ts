import { parseCommandArgs } from './args.ts';
import { InputError, TextStream } from '../engine/index.ts';
import { printable } from './format.ts';
import { MERGE_HELP, MERGE_OPTIONS } from './mergeArgs.ts';
import { cancelOnSignals } from './progress.ts';
import { loadProgress, openModel, parseIntOption, stdout, withWorkspace, type CommandEnv } from './session.ts';

const HELP = `dem generate --model DIR --prompt TEXT [options]
dem generate --base DIR --model DIR[:WEIGHT] ... [merge options] --prompt TEXT [options]

Continues the prompt on the GPU with a KV cache and streams the text to stdout (the prompt
first). Greedy by default; --temperature > 0 samples, optionally from the --top-k most likely
tokens, with a seeded PRNG (same seed → same text; without --seed one is chosen and printed on
stderr). Stops after --max-tokens, at the model's EOS token, or when the context is full.
With --base, the model is the merge the options describe, made in memory.

Options:
  --model DIR                the checkpoint (without --base)
  --prompt TEXT              the text to continue
  --max-tokens N             most new tokens (default 64)
  --temperature X            0 = greedy (default); > 0 samples from softmax(logits / X)
  --top-k K                  sample among the K most likely tokens only (default: all)
  --seed N                   sampling seed (0 … 4294967295)
  --ignore-eos               keep going past the EOS token
  --json                     print {prompt, text, ids, stop, seed} as JSON instead of streaming
  --quiet                    no progress lines on stderr

${MERGE_HELP.replace('--seed N ', '--merge-seed N')}`;

function parseFloatOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || x < 0) throw new InputError(`--${name}: '${v}' is not a number ≥ 0`);
  return x;
}

export async function runGenerate(args: string[], env: CommandEnv = {}): Promise<number> {
  const { values } = parseCommandArgs({
    args,
    options: {
      ...MERGE_OPTIONS,
      // --seed samples here; the merge's (DARE) seed is --merge-seed.
      seed: { type: 'string' },
      'merge-seed': { type: 'string' },
      prompt: { type: 'string' },
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'ignore-eos': { type: 'boolean' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  // On a terminal the text is shown with control characters escaped (a model or tokenizer can
  // emit escape sequences); a pipe or file gets it verbatim.
  const out = env.out ?? (process.stdout.isTTY ? (text: string) => stdout(printable(text, true)) : stdout);
  if (values.help) {
    out(`${HELP}\n`);
    return 0;
  }
  if (values.prompt === undefined) throw new InputError('--prompt TEXT is required');
  const prompt = values.prompt;
  const maxTokens = parseIntOption('max-tokens', values['max-tokens'], 0) ?? 64;
  const temperature = parseFloatOption('temperature', values.temperature) ?? 0;
  const topK = parseIntOption('top-k', values['top-k'], 1);
  // The sampler's PRNG (mulberry32) has a 32-bit state: a larger seed would silently alias another.
  const seed = parseIntOption('seed', values.seed, 0, 2 ** 32 - 1) ?? (temperature > 0 ? Math.floor(Math.random() * 2 ** 31) : 0);
  const signal = env.signal ?? cancelOnSignals();

  const started = Date.now();
  let firstToken = 0;
  const { model, result } = await withWorkspace(env, { label: 'dem-generate' }, async (ws) => {
    const model = await openModel(ws, { ...values, seed: values['merge-seed'] }, signal);
    const stream = new TextStream(await ws.tokenizer(model.recipe.base));
    if (!values.quiet && temperature > 0) process.stderr.write(`generate: temperature ${temperature}${topK ? `, top-k ${topK}` : ''}, seed ${seed}\n`);
    let t0 = 0;
    const showLoad = loadProgress(values.quiet, model.merged);
    const result = await ws.generate(
      { recipe: model.recipe, prompt, maxTokens, temperature, topK, seed, ignoreEos: values['ignore-eos'] },
      {
        signal,
        onProgress: (p) => {
          showLoad(p);
          if (p.stage !== 'ready') return;
          if (!values.json) out(prompt);
          t0 = Date.now();
        },
        onToken: (id, i) => {
          if (i === 0) firstToken = Date.now() - t0;
          if (!values.json) out(stream.push(id));
        },
      },
    );
    if (!values.json) out(`${stream.flush()}\n`);
    return { model, result };
  });

  if (values.json) {
    out(`${JSON.stringify({ model: model.name, prompt, prompt_ids: result.promptIds, text: result.text, ids: result.ids, stop: result.stop, temperature, top_k: topK ?? null, seed }, null, 2)}\n`);
  }
  if (!values.quiet) {
    const secs = (Date.now() - started) / 1000;
    process.stderr.write(
      `generate: ${result.ids.length} tokens after a ${result.promptTokens}-token prompt, stopped at ${result.stop === 'eos' ? 'EOS' : result.stop === 'context' ? 'the full context' : '--max-tokens'}` +
        ` (${secs.toFixed(1)}s in all, first token after ${(firstToken / 1000).toFixed(2)}s)\n`,
    );
  }
  return 0;
}
