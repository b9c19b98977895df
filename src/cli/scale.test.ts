import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRealistic } from '../../scripts/realistic.ts';
import { runPpl } from './ppl.ts';

/**
 * Real sizes in CI: a Qwen2.5-0.5B-shaped base (its 151,936 × 896 tied embedding, BF16; one of
 * its 24 layers) with four fine-tunes, evaluated by `dem ppl --resident` (the studio's interactive
 * path: the base and the four fine-tunes resident in BF16, Δ formed in the kernels) and by the
 * streamed merge. The resident run's gpu_peak_bytes — the runtime's own count of every buffer —
 * stays within the memory plan, which holds (N + 1) stored-size models plus the merged model and
 * the activations, not N F32 copies of Δ; and the perplexity equals the streamed path's, bit for bit.
 * On SwiftShader the four BF16 fine-tunes' embedding rows (1.09 GB) exceed the 1 GiB binding, so
 * the embedding is also merged in chunks.
 */
const LAYERS = 1;
const N = 4;
let dir: string;
let base: string;
let finetunes: string[];

interface PplJson {
  mode: string;
  gpu_peak_bytes: number;
  plan_bytes: number;
  texts: { nll_sum: number; ppl: number; tokens: number }[];
}

async function ppl(args: string[]): Promise<PplJson> {
  let out = '';
  const code = await runPpl([...args, '--json', '--quiet'], { out: (s) => (out += s), signal: new AbortController().signal });
  expect(code).toBe(0);
  return JSON.parse(out) as PplJson;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dem-scale-'));
  const tokenizer = readFileSync(new URL('../../e2e/fixtures/tiny-qwen2/tokenizer.json', import.meta.url), 'utf8');
  const written = writeRealistic(dir, 'qwen2.5-0.5b', { layers: LAYERS, finetunes: N, tokenizer });
  base = written.base;
  finetunes = written.finetunes;
  // A few tokens, one window: the time goes into loading and merging five 151,936 × 896 embeddings.
  writeFileSync(join(dir, 'text.txt'), 'the sun and');
}, 300_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a Qwen2.5-0.5B-shaped base with four BF16 fine-tunes (reduced depth, real embedding)', () => {
  it('dem ppl --resident: gpu_peak_bytes within the plan, (N + 1) BF16 models not N F32 Δ, perplexity equal to the streamed merge', async () => {
    const args = ['--base', base, ...finetunes.flatMap((f, i) => ['--model', `${f}:${[0.4, -0.2, 0.7, 0.3][i]}`]), '--text', join(dir, 'text.txt'), '--context', '10'];
    const t0 = performance.now();
    const resident = await ppl([...args, '--resident']);
    const t1 = performance.now();
    const streamed = await ppl(args);
    const t2 = performance.now();
    expect(resident.mode).toBe('resident');
    expect(streamed.mode).toBe('streaming');
    expect(resident.texts.map((t) => t.nll_sum)).toEqual(streamed.texts.map((t) => t.nll_sum));
    expect(Number.isFinite(resident.texts[0]!.ppl)).toBe(true);

    // What the resident set must hold: N + 1 stored BF16 models and the merged BF16 model (per parameter: 2 bytes each).
    const params = 151_936 * 896 + LAYERS * (896 * 896 * 2 + 128 * 896 * 2 + 896 + 128 * 2 + 3 * 4864 * 896 + 2 * 896) + 896;
    const stored = (N + 2) * 2 * params;
    const f32Deltas = N * 4 * params;
    console.log(
      `qwen2.5-0.5b × ${LAYERS} layers, ${params} parameters, ${N} BF16 fine-tunes: resident gpu_peak_bytes ${resident.gpu_peak_bytes} (plan ${resident.plan_bytes}, ` +
        `${((100 * resident.gpu_peak_bytes) / resident.plan_bytes).toFixed(1)}% of it; (N + 2) BF16 models ${stored}; N F32 Δ alone would be ${f32Deltas}); ` +
        `streamed gpu_peak_bytes ${streamed.gpu_peak_bytes} (plan ${streamed.plan_bytes}); resident ${((t1 - t0) / 1000).toFixed(1)} s, streamed ${((t2 - t1) / 1000).toFixed(1)} s`,
    );
    expect(resident.gpu_peak_bytes).toBeLessThanOrEqual(resident.plan_bytes);
    expect(streamed.gpu_peak_bytes).toBeLessThanOrEqual(streamed.plan_bytes);
    // The plan is a tight bound, and the peak is the stored-size set plus activations, far below N F32 copies of Δ.
    expect(resident.gpu_peak_bytes).toBeGreaterThan(0.9 * resident.plan_bytes);
    expect(resident.gpu_peak_bytes).toBeGreaterThan(stored);
    expect(resident.gpu_peak_bytes).toBeLessThan(stored * 1.1);
    expect(resident.gpu_peak_bytes).toBeLessThan(f32Deltas + 2 * params);
  }, 1_800_000);
});
