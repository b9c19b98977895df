import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FIXTURES } from './fixtures.ts';

/**
 * Runs the `dem` CLI (same engine, Dawn on SwiftShader in Node) to get the numbers the studio
 * must reproduce. Results are cached per argument list: each run costs a GPU start-up.
 */
const run = promisify(execFile);
const cache = new Map<string, Promise<string>>();
const ROOT = join(FIXTURES, '..', '..');

export function dem(args: string[]): Promise<string> {
  const key = args.join('\u0000');
  let p = cache.get(key);
  if (!p) {
    p = run('node', [join(ROOT, 'src/cli/dem.mjs'), ...args], {
      cwd: ROOT,
      env: { ...process.env, LD_LIBRARY_PATH: `/usr/lib/chromium${process.env.LD_LIBRARY_PATH ? `:${process.env.LD_LIBRARY_PATH}` : ''}` },
      maxBuffer: 64 * 1024 * 1024,
    }).then((r) => r.stdout);
    cache.set(key, p);
  }
  return p;
}

export interface CliPpl {
  texts: { text: string; ppl: number; tokens: number; predicted: number }[];
}

/** `dem ppl --base BASE --model DIR:W … --text FILE … --json`: perplexity of the merge, per text. */
export async function mergedPpl(base: string, models: [string, number][], texts: string[]): Promise<number[]> {
  const out = await dem(['ppl', '--base', base, ...models.flatMap(([m, w]) => ['--model', `${m}:${w}`]), ...texts.flatMap((t) => ['--text', t]), '--json', '--quiet']);
  return (JSON.parse(out) as CliPpl).texts.map((t) => t.ppl);
}

/** `dem merge … --out DIR` */
export async function mergeTo(base: string, models: [string, number][], out: string): Promise<void> {
  await dem(['merge', '--base', base, ...models.flatMap(([m, w]) => ['--model', `${m}:${w}`]), '--out', out, '--quiet']);
}

/** `dem ppl --config FILE.yml --text FILE … --json`: the merge a mergekit YAML describes. */
export async function configPpl(config: string, texts: string[]): Promise<number[]> {
  const out = await dem(['ppl', '--config', config, ...texts.flatMap((t) => ['--text', t]), '--json', '--quiet']);
  return (JSON.parse(out) as CliPpl).texts.map((t) => t.ppl);
}
