import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../engine/index.ts';
import { testRuntime } from '../testing/gpu.ts';
import { runGenerate } from './generate.ts';
import { reportError } from './main.ts';
import type { CommandEnv } from './ppl.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const LLAMA = join(ROOT, 'e2e/fixtures/tiny-llama');

interface GenJson {
  prompt: string;
  prompt_ids: number[];
  text: string;
  ids: number[];
  stop: string;
  seed: number;
}

async function run(args: string[]): Promise<{ code: number; out: string; chunks: string[] }> {
  const chunks: string[] = [];
  const env: CommandEnv = { runtime: () => testRuntime(), out: (s) => void chunks.push(s), signal: new AbortController().signal };
  const code = await runGenerate([...args, '--quiet'], env).catch(reportError);
  return { code, out: chunks.join(''), chunks };
}

describe('dem generate', () => {
  it('streams the prompt then the continuation; --json gives the same tokens; same seed → same text', async () => {
    const sampled = ['--model', LLAMA, '--prompt', 'The keeper', '--max-tokens', '8', '--temperature', '0.9', '--top-k', '40', '--seed', '5'];
    const a = JSON.parse((await run([...sampled, '--json'])).out) as GenJson;
    const b = JSON.parse((await run([...sampled, '--json'])).out) as GenJson;
    expect(a.ids).toHaveLength(8);
    expect(b).toEqual(a);
    expect(a.seed).toBe(5);
    const other = JSON.parse((await run([...sampled.slice(0, -1), '6', '--json'])).out) as GenJson;
    expect(other.seed).toBe(6);

    const streamed = await run(sampled);
    expect(streamed.code).toBe(0);
    expect(streamed.chunks[0]).toBe('The keeper');
    expect(streamed.out).toBe(`The keeper${a.text}\n`);
    // The printed text is the decoding of the ids (byte-level BPE round trip).
    const tok = await loadTokenizer(JSON.parse(readFileSync(join(LLAMA, 'tokenizer.json'), 'utf8')));
    expect(a.text).toBe(tok.decode(a.ids));
    expect(a.prompt_ids).toEqual(tok.encode('The keeper'));
  });

  it('generates from a merge made in memory (--base, --model DIR:W)', async () => {
    const args = ['--base', LLAMA, '--model', `${LLAMA}-ft-a:0.7`, '--model', `${LLAMA}-ft-b:0.4`, '--prompt', 'The keeper', '--max-tokens', '5', '--json'];
    const merged = await run(args);
    expect(merged.code).toBe(0);
    const got = JSON.parse(merged.out) as GenJson & { model: string };
    expect(got.model).toMatch(/^merge of tiny-llama \(task_arithmetic: tiny-llama-ft-a:0\.7, tiny-llama-ft-b:0\.4\)/);
    expect(got.ids).toHaveLength(5);
    expect(got.stop).toBe('max-tokens');
  });

  it('refuses bad options with one-line errors', async () => {
    const cases: [string[], RegExp][] = [
      [['--model', LLAMA], /--prompt TEXT is required/],
      [['--model', LLAMA, '--prompt', 'x', '--temperature=-1'], /--temperature: '-1' is not a number ≥ 0/],
      [['--model', LLAMA, '--prompt', 'x', '--top-k', '0'], /--top-k: '0' is not an integer ≥ 1/],
      [['--model', LLAMA, '--prompt', 'x', '--max-tokens', '1.5'], /--max-tokens: '1.5' is not an integer/],
    ];
    for (const [args, message] of cases) {
      const errors: string[] = [];
      const original = console.error;
      console.error = (...a: unknown[]) => void errors.push(a.map(String).join(' '));
      try {
        expect(await runGenerate(args, { signal: new AbortController().signal }).catch(reportError)).toBe(1);
      } finally {
        console.error = original;
      }
      expect(errors.join('\n')).toMatch(message);
    }
  });
});
