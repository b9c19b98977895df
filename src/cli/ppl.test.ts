import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { testRuntime } from '../testing/gpu.ts';
import { main, reportError, USAGE } from './main.ts';
import { runPpl } from './ppl.ts';

/**
 * `dem ppl` against the independent PyTorch float64 reference (scripts/reference_ppl.py, outputs
 * committed under e2e/fixtures/reference/ by scripts/make-reference.sh): same token count, same
 * predicted count, same first token ids (two tokenizer implementations agree), mean NLL within
 * relative 1e-4 — for each fixture model and for task-arithmetic merges made in memory.
 */
const ROOT = new URL('../../', import.meta.url).pathname;
const REF_DIR = join(ROOT, 'e2e/fixtures/reference');

interface Reference {
  model?: string;
  base?: string;
  ft?: string[];
  lambda?: number;
  text: string;
  tokens: number;
  predicted: number;
  context: number;
  nll_mean: number;
  ids_head: number[];
  /** The BOS put before each window, when the tokenizer adds one. */
  bos?: number;
}

interface PplJson {
  mode: 'resident' | 'streaming' | 'base';
  context: number;
  texts: { text: string; tokens: number; predicted: number; nll_mean: number; ids_head: number[] }[];
}

const references = readdirSync(REF_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => ({ file: f, ref: JSON.parse(readFileSync(join(REF_DIR, f), 'utf8')) as Reference }));

/** `dem ppl` arguments for the model a reference describes (paths are relative to the repo root). */
function modelArgs(r: Reference): string[] {
  if (r.base) return ['--base', join(ROOT, r.base), ...(r.ft ?? []).flatMap((f) => ['--model', join(ROOT, f)]), '--lambda', String(r.lambda ?? 1)];
  return ['--model', join(ROOT, r.model!)];
}

// One `dem ppl` run per model (and context) with all of its texts.
const groups = new Map<string, typeof references>();
for (const entry of references) {
  const key = [...modelArgs(entry.ref), '--context', String(entry.ref.context)].join(' ');
  groups.set(key, [...(groups.get(key) ?? []), entry]);
}

async function runJson(args: string[]): Promise<PplJson> {
  let out = '';
  const code = await runPpl([...args, '--json', '--quiet', '--batch', '32'], { runtime: () => testRuntime(), out: (s) => (out += s), signal: new AbortController().signal });
  expect(code).toBe(0);
  return JSON.parse(out) as PplJson;
}

describe('dem ppl vs the PyTorch float64 reference', () => {
  it('has reference outputs for every fixture base model and for merges', () => {
    const models = new Set(references.map((r) => r.ref.model ?? `merge:${r.ref.base}`));
    for (const m of [
      'e2e/fixtures/tiny-gpt2',
      'e2e/fixtures/tiny-llama',
      'e2e/fixtures/tiny-qwen2',
      'e2e/fixtures/tiny-phi3',
      'merge:e2e/fixtures/tiny-gpt2',
      'merge:e2e/fixtures/tiny-llama',
      'merge:e2e/fixtures/tiny-phi3',
      // The families people fine-tune today, their RoPE scalings and their tokenizers as shipped.
      'e2e/fixtures/tiny-llama3',
      'e2e/fixtures/tiny-llama2-linear',
      'e2e/fixtures/tiny-llama-dynamic',
      'e2e/fixtures/tiny-qwen2-yarn',
      'e2e/fixtures/tiny-qwen3',
      'e2e/fixtures/tiny-gemma2',
      'e2e/fixtures/tiny-olmo2',
      'merge:e2e/fixtures/tiny-llama3',
      'merge:e2e/fixtures/tiny-qwen3',
      'merge:e2e/fixtures/tiny-gemma2',
      'merge:e2e/fixtures/tiny-olmo2',
    ]) {
      expect(models).toContain(m);
    }
    // Several windows per text, the last one shorter.
    for (const { ref } of references) expect(ref.tokens % ref.context).toBeGreaterThanOrEqual(2);
    // BOS as context only (the tokenizers that add one): every text token is predicted.
    for (const { file, ref } of references) expect(ref.predicted, file).toBe(ref.bos === undefined ? ref.tokens - Math.ceil(ref.tokens / ref.context) : ref.tokens);
  });

  for (const [key, entries] of groups) {
    const name = entries.map((e) => e.file.replace(/\.json$/, '')).join(', ');
    it(`${name}`, async () => {
      const ref0 = entries[0]!.ref;
      const args = [...modelArgs(ref0), '--context', String(ref0.context), ...entries.flatMap((e) => ['--text', join(ROOT, e.ref.text)])];
      const got = await runJson(args);
      expect(got.context).toBe(ref0.context);
      expect(got.texts).toHaveLength(entries.length);
      entries.forEach(({ file, ref }, i) => {
        const t = got.texts[i]!;
        expect(t.ids_head, `${file}: tokenizer ids`).toEqual(ref.ids_head);
        expect(t.tokens, file).toBe(ref.tokens);
        expect(t.predicted, file).toBe(ref.predicted);
        const rel = Math.abs(t.nll_mean - ref.nll_mean) / Math.abs(ref.nll_mean);
        console.log(`${file}: nll_mean ${t.nll_mean.toFixed(8)} vs reference ${ref.nll_mean.toFixed(8)}, relative error ${rel.toExponential(2)} (${ref.tokens} tokens, context ${ref.context})`);
        expect(rel, `${file} (${key})`).toBeLessThanOrEqual(1e-4);
      });
    });
  }
});

describe('dem without a usable GPU driver', () => {
  it('says what to install (a Vulkan driver, or Debian chromium for SwiftShader), in one line', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'src/cli/dem.mjs'), 'ppl', '--model', join(ROOT, 'e2e/fixtures/tiny-gpt2'), '--text', join(ROOT, 'e2e/fixtures/texts/prose.txt'), '--quiet'], {
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    const line = r.stderr.split('\n').find((l) => l.startsWith('dem: error:'));
    expect(line).toMatch(/no GPU adapter was found.*Vulkan driver.*chromium.*SwiftShader/);
  });
});

describe('dem ppl --resident', () => {
  it("evaluates a merge through the studio's resident path with the same bits as the streamed merge", async () => {
    const base = join(ROOT, 'e2e/fixtures/tiny-llama');
    const args = ['--base', base, '--model', `${join(ROOT, 'e2e/fixtures/tiny-llama-ft-a')}:0.7`, '--model', `${join(ROOT, 'e2e/fixtures/tiny-llama-ft-b')}:-0.4`, '--method', 'ties', '--density', '0.6',
      '--text', join(ROOT, 'e2e/fixtures/texts/prose.txt'), '--context', '48'];
    const streamed = await runJson(args);
    const resident = await runJson([...args, '--resident']);
    expect([streamed.mode, resident.mode]).toEqual(['streaming', 'resident']);
    expect(resident.texts.map((t) => t.nll_mean)).toEqual(streamed.texts.map((t) => t.nll_mean));
    expect(resident.texts[0]!.nll_mean).toBeGreaterThan(0);
  });

  it('with a BOS before every window (Gemma 2): the resident model is sized for context + 1 and gives the streamed bits', async () => {
    const base = join(ROOT, 'e2e/fixtures/tiny-gemma2');
    const args = ['--base', base, '--model', `${join(ROOT, 'e2e/fixtures/tiny-gemma2-ft-a')}:0.6`, '--model', `${join(ROOT, 'e2e/fixtures/tiny-gemma2-ft-b')}:0.6`, '--lambda', '0.8',
      '--text', join(ROOT, 'e2e/fixtures/texts/prose.txt'), '--context', '48'];
    const streamed = await runJson(args);
    const resident = await runJson([...args, '--resident']);
    expect([streamed.mode, resident.mode]).toEqual(['streaming', 'resident']);
    expect(resident.texts.map((t) => t.nll_mean)).toEqual(streamed.texts.map((t) => t.nll_mean));
    const ref = references.find((r) => r.file === 'merge-gemma2-a0.6-b0.6-l0.8.prose.json')!.ref;
    expect(ref.bos).toBe(2);
    expect(resident.texts[0]!.predicted).toBe(ref.tokens);
    expect(Math.abs(resident.texts[0]!.nll_mean - ref.nll_mean) / ref.nll_mean).toBeLessThanOrEqual(1e-4);
  });
});

describe('dem ppl errors (one line, before any GPU work)', () => {
  it('is registered in main() and its usage', async () => {
    const logged: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (logged.push(String(s)), true));
    expect(await main(['ppl', '--help'])).toBe(0);
    expect(logged.join('')).toMatch(/^dem ppl --model DIR --text FILE/);
    expect(USAGE).toMatch(/dem ppl --model DIR --text FILE/);
    expect(USAGE).toMatch(/dem generate --model DIR --prompt TEXT/);
  });

  const tmp = mkdtempSync(join(tmpdir(), 'dem-ppl-'));
  const empty = join(tmp, 'empty.txt');
  const oneToken = join(tmp, 'one.txt');
  writeFileSync(empty, '');
  writeFileSync(oneToken, 'a');
  const gpt2 = join(ROOT, 'e2e/fixtures/tiny-gpt2');
  const prose = join(ROOT, 'e2e/fixtures/texts/prose.txt');
  let errors: string[] = [];

  afterEach(() => {
    vi.restoreAllMocks();
  });

  const cases: [string, string[], RegExp, number][] = [
    ['empty text', ['--model', gpt2, '--text', empty], /empty\.txt: has 0 tokens; perplexity needs at least 2/, 1],
    ['one-token text', ['--model', gpt2, '--text', oneToken], /one\.txt: has 1 token;/, 1],
    ['missing text file', ['--model', gpt2, '--text', join(tmp, 'nope.txt')], /nope\.txt: no such file/, 1],
    ['missing model folder', ['--model', join(tmp, 'no-model'), '--text', prose], /--model .*no-model: no such folder/, 1],
    ['folder without config.json', ['--model', tmp, '--text', prose], /config\.json: missing/, 1],
    ['context beyond GPT-2 positions', ['--model', gpt2, '--text', prose, '--context', '65'], /context 65 exceeds the model's 64 learned positions/, 1],
    ['bad context', ['--model', gpt2, '--text', prose, '--context', 'x'], /--context: 'x' is not an integer/, 1],
    ['merge option without --base', ['--model', gpt2, '--text', prose, '--lambda', '0.5'], /--lambda only apply to a merge/, 1],
    ['two models without --base', ['--model', gpt2, '--model', gpt2, '--text', prose], /2 --model folders given/, 1],
    ['no text', ['--model', gpt2], /at least one --text FILE/, 1],
    ['unknown option', ['--model', gpt2, '--txt', prose], /Unknown option '--txt'/, 2],
  ];
  for (const [what, args, message, exit] of cases) {
    it(what, async () => {
      errors = [];
      vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.map(String).join(' ')));
      // What main() does with a command's failure, without main()'s Ctrl-C handlers.
      expect(await runPpl(args, { signal: new AbortController().signal }).catch(reportError)).toBe(exit);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(message);
    });
  }
});
