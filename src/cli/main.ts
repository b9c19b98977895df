import { parseArgs } from 'node:util';
import { DEFAULT_METHOD, DemError, methodNames } from '../engine/index.ts';
import { oneLine, wrap } from './format.ts';
import { runInspect } from './inspect.ts';
import { runMerge } from './merge.ts';
import { runEval } from './eval.ts';
import { runGenerate } from './generate.ts';
import { runPpl } from './ppl.ts';

/**
 * `dem` — the studio's engine from the command line. Each command lives in its own module and
 * returns an exit code; DemErrors become one line on stderr naming the file and the problem.
 */
export const USAGE = `dem — DEM Studio's engine on the command line

Usage:
  dem inspect PATH [--json]        architecture, parameter count, dtypes and tensors of a
                                   checkpoint folder (config.json + safetensors, sharded or not),
                                   or r, alpha, targets and layers of a PEFT LoRA adapter folder
  dem merge --base DIR --model DIR[:W] ... --out DIR
                                   merge fine-tunes into the base on the GPU and write an HF
                                   folder + recipe JSON + mergekit YAML; methods:
                                   ${wrap(methodNames().map((m) => (m === DEFAULT_METHOD ? `${m} (DEM, default)` : m)).join(', '), 62, 35)}
  dem merge --config FILE.yml --out DIR
                                   the same from a mergekit YAML config
  dem ppl --model DIR --text FILE ... [--context N] [--json]
                                   validation perplexity per text (tokens, predicted, mean NLL,
                                   ppl); with --base DIR --model DIR[:W] ... of a merge made in memory
  dem eval --model DIR --task FILE ... [--context N] [--json]
                                   task scores (multiple choice: acc, acc_norm; generative:
                                   exact match; with standard errors) from JSON Lines task
                                   files; with --base DIR --model DIR[:W] ... of a merge
  dem generate --model DIR --prompt TEXT [--max-tokens N] [--temperature X] [--top-k K] [--seed N]
                                   continue a prompt (greedy, or seeded sampling), streamed to
                                   stdout; --base DIR --model DIR[:W] ... generates from a merge
  dem help                         this text

Run 'dem COMMAND --help' for a command's options.`;

type Command = (args: string[]) => Promise<number>;

const commands: Record<string, Command> = {
  inspect: runInspect,
  merge: runMerge,
  ppl: runPpl,
  eval: runEval,
  generate: runGenerate,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    console.error(`dem: unknown command '${oneLine(name)}'\n\n${USAGE}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (error) {
    return reportError(error);
  }
}

/**
 * Every failure as one printable line on stderr (control characters escaped, length capped):
 * DemErrors say what is wrong with which file; an argument error exits 2; anything else is a
 * bug reported as an internal error, its stack printed only with DEM_DEBUG=1.
 */
export function reportError(error: unknown): number {
  if (error instanceof DemError) {
    console.error(`dem: error: ${oneLine(error.message)}`);
    return error.code === 'cancelled' ? 130 : 1;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
    console.error(`dem: ${oneLine(message)}`);
    return 2;
  }
  if (error instanceof Error && 'code' in error && typeof error.code === 'string' && /^E[A-Z]+$/.test(error.code)) {
    console.error(`dem: error: ${oneLine(message)}`);
    return 1;
  }
  console.error(`dem: internal error: ${oneLine(`${error instanceof Error ? error.name : 'Error'}: ${message}`)}${process.env.DEM_DEBUG ? '' : ' (DEM_DEBUG=1 prints the stack)'}`);
  if (process.env.DEM_DEBUG && error instanceof Error && error.stack) console.error(error.stack);
  return 1;
}

export { parseArgs };
