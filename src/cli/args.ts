import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A command-line token that is a number, sign included (`-0.5`, `-1e-3`, `-.5`). */
const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?$/i;

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * node:util's parseArgs, with two habits of other tools' command lines:
 * - a negative number after a string option is its value (`--lambda -0.5`, as argparse reads it;
 *   parseArgs alone calls that ambiguous and asks for `--lambda=-0.5`);
 * - `aliases` rename flags before parsing (`--out-shard-size` → `--max-shard-size`), both the
 *   `--name value` and the `--name=value` forms;
 * - `--no-NAME` sets a boolean option false (argparse's BooleanOptionalAction), so a parameter
 *   whose default is on (TIES's normalize) can be turned off from the command line.
 */
export function parseCommandArgs<T extends ParseArgsConfig & { args: string[]; options: Options }>(
  config: T,
  aliases: Readonly<Record<string, string>> = {},
): ReturnType<typeof parseArgs<T>> {
  const args: string[] = [];
  for (let i = 0; i < config.args.length; i++) {
    const token = config.args[i]!;
    if (token === '--') {
      args.push(...config.args.slice(i));
      break;
    }
    const m = /^--([^=]+)(=.*)?$/s.exec(token);
    if (!m) {
      args.push(token);
      continue;
    }
    const name = aliases[m[1]!] ?? m[1]!;
    const next = config.args[i + 1];
    if (m[2] === undefined && config.options[name]?.type === 'string' && next !== undefined && next.startsWith('-') && NUMBER.test(next)) {
      args.push(`--${name}=${next}`);
      i++;
    } else {
      args.push(`--${name}${m[2] ?? ''}`);
    }
  }
  return parseArgs({ ...config, allowNegative: true, args } as T);
}
