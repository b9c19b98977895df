import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, test } from './helpers/network.ts';
import { dem } from './helpers/cli.ts';
import { fixtureDir } from './helpers/fixtures.ts';
import { addFolder, addText, card, coefficient, openStudio, settledPpl, waitForAdapter } from './helpers/studio.ts';

/**
 * Task scores in the studio (Chromium, SwiftShader): a task file per validation set, scored for
 * the merge under the sliders right after its perplexity — the same numbers `dem eval` gives for
 * that merge — a bad line reported on its file while the workspace stays, the search recording
 * both numbers with their rank correlation, and the DEM-vs-mixing table exported as CSV.
 */
const BASE = fixtureDir('tiny-gpt2');
const FT_A = fixtureDir('tiny-gpt2-ft-a');
const FT_B = fixtureDir('tiny-gpt2-ft-b');
const FT_C = fixtureDir('tiny-gpt2-ft-c');
const CLOZE = fixtureDir('tasks/cloze.jsonl');
const ANSWER = fixtureDir('tasks/answer.jsonl');

interface EvalJson {
  tasks: ({ name: string; n: number; acc: number; acc_norm: number } | { name: string; n: number; exact_match: number })[];
}

const taskLine = (page: Page, set: string) => page.locator(`[data-testid="task-file"][data-set="${set}"]`);
const scoreCell = (page: Page, set: string) => page.locator(`[data-testid="ppl-row"][data-name="${set}"]`).getByTestId('task-score');

test('task scores of a merge equal dem eval; a bad line is reported and the workspace kept; search and the DEM-vs-mixing table show both numbers', async ({ page }) => {
  test.setTimeout(420_000);
  await openStudio(page, '/?fresh');
  await waitForAdapter(page);
  await addFolder(page, BASE, 'tiny-gpt2');
  await addFolder(page, FT_A, 'tiny-gpt2-ft-a');
  await addFolder(page, FT_B, 'tiny-gpt2-ft-b');
  const prose = (await readFile(fixtureDir('texts/prose.txt'), 'utf8')).slice(0, 200);
  const code = (await readFile(fixtureDir('texts/code.txt'), 'utf8')).slice(0, 200);
  await expect(await addText(page, 'prose', prose)).toHaveAttribute('data-status', 'ready');
  await expect(await addText(page, 'code', code)).toHaveAttribute('data-status', 'ready');
  await coefficient(page, 'tiny-gpt2-ft-a').getByTestId('coefficient-slider-number').fill('0.5');
  await coefficient(page, 'tiny-gpt2-ft-b').getByTestId('coefficient-slider-number').fill('-0.3');

  // A bad line: its file says which line and why; texts, cards and the other task file stay.
  const dir = await mkdtemp(join(tmpdir(), 'dem-tasks-'));
  const bad = join(dir, 'bad.jsonl');
  await writeFile(bad, '{"prompt": "2 + 2 =", "answer": "4"}\n{"prompt": "3 + 3 =", "answer": 6}\n');
  await taskLine(page, 'code').getByTestId('task-file-input').setInputFiles(bad);
  await expect(taskLine(page, 'code')).toHaveAttribute('data-status', 'failed');
  await expect(taskLine(page, 'code').getByTestId('task-file-error')).toHaveText('bad.jsonl: line 2: "answer" must be a string, got number 6');
  await taskLine(page, 'prose').getByTestId('task-file-input').setInputFiles(CLOZE);
  await expect(taskLine(page, 'prose')).toHaveAttribute('data-status', 'ready');
  await expect(page.locator('[data-testid="validation-set"][data-status="ready"]')).toHaveCount(2);
  for (const name of ['tiny-gpt2', 'tiny-gpt2-ft-a', 'tiny-gpt2-ft-b']) await expect(card(page, name)).toHaveAttribute('data-status', 'ready');
  // The fixed file replaces the bad one.
  await taskLine(page, 'code').getByTestId('task-file-input').setInputFiles(ANSWER);
  await expect(taskLine(page, 'code')).toHaveAttribute('data-status', 'ready');

  const t0 = Date.now();
  await settledPpl(page);
  await expect(page.getByTestId('task-status')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
  const studio = {
    cloze: { acc: Number(await scoreCell(page, 'prose').getAttribute('data-value')), accNorm: Number(await scoreCell(page, 'prose').getAttribute('data-acc-norm')) },
    answer: Number(await scoreCell(page, 'code').getAttribute('data-value')),
  };
  const cli = JSON.parse(
    await dem(['eval', '--base', BASE, '--model', `${FT_A}:0.5`, '--model', `${FT_B}:-0.3`, '--task', CLOZE, '--task', ANSWER, '--json', '--quiet']),
  ) as EvalJson;
  const [mc, gen] = cli.tasks;
  if (!mc || !('acc' in mc) || !gen || !('exact_match' in gen)) throw new Error(`unexpected dem eval output: ${JSON.stringify(cli)}`);
  console.log(`studio vs dem eval: cloze acc ${studio.cloze.acc} / ${mc.acc}, acc_norm ${studio.cloze.accNorm} / ${mc.acc_norm}; answer exact match ${studio.answer} / ${gen.exact_match}`);
  expect(studio).toEqual({ cloze: { acc: mc.acc, accNorm: mc.acc_norm }, answer: gen.exact_match });
  await expect(scoreCell(page, 'prose')).toHaveAttribute('data-n', String(mc.n));

  const t1 = Date.now();
  // A grid records perplexity and task score per merge; the correlation view summarises them.
  await page.getByTestId('grid-min').fill('0');
  await page.getByTestId('grid-max').fill('1');
  await page.getByTestId('grid-step').fill('1');
  await page.getByTestId('grid-run').click();
  await expect(page.getByTestId('job')).toHaveAttribute('data-status', 'done', { timeout: 240_000 });
  await expect(page.getByTestId('search-row')).toHaveCount(4);
  await expect(page.locator('[data-testid="search-row"] [data-score-set="prose"]')).toHaveCount(4);
  const correlation = page.getByTestId('correlation');
  await expect(correlation).toHaveAttribute('data-rho', /^-?[01](\.\d+)?(e-?\d+)?$|^$/);
  await expect(page.getByTestId('correlation-summary')).toContainText('Perplexity picks #');

  const t2 = Date.now();
  // A data-mixing baseline (here a stand-in checkpoint), the measured table, and its CSV.
  await addFolder(page, FT_C, 'tiny-gpt2-ft-c');
  await card(page, 'tiny-gpt2-ft-c').getByTestId('checkpoint-role').selectOption('mixing');
  await page.getByTestId('comparison-measure').click();
  await expect(page.getByTestId('comparison-panel')).toHaveAttribute('data-status', 'done', { timeout: 240_000 });
  const kinds = await page.getByTestId('comparison-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-kind')));
  expect(kinds).toEqual(['mixing', 'dem', 'fine-tune', 'base']);
  await expect(page.locator('[data-testid="comparison-row"][data-kind="mixing"]')).toHaveAttribute('data-mean-score', /^\d/);
  await expect(page.getByTestId('comparison-improvement')).toHaveAttribute('data-mean-ppl', /^-?\d/);
  const download = page.waitForEvent('download');
  await page.getByTestId('comparison-csv').click();
  const csv = await readFile(await (await download).path(), 'utf8');
  expect(csv.split('\n')[0]).toBe('model,prose ppl,code ppl,prose acc,code exact match,mean ppl,mean task score,tokens trained');
  expect(csv).toContain('data mixing (tiny-gpt2-ft-c)');
  console.log(`timings: live merge scored ${((t1 - t0) / 1000).toFixed(1)} s, grid of 4 ${((t2 - t1) / 1000).toFixed(1)} s, table ${((Date.now() - t2) / 1000).toFixed(1)} s`);
});

test('the demo workspace ships a task file per distribution, its data-mixing baseline, the searched grid with both numbers and the table', async ({ page }) => {
  const manifestPath = join(import.meta.dirname, '..', 'public', 'demo', 'manifest.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8').catch(() => '{}')) as {
    distributions?: { id: string; task?: string }[];
    checkpoints?: { name: string; role: string }[];
    tasks?: { search: { points: unknown[]; rankCorrelation: number; chosenByPerplexity: { meanScore: number } } };
  };
  test.skip(!manifest.tasks, 'public/demo/manifest.json has no tasks yet (npm run make-demo-tasks)');
  await openStudio(page, '/?demo');
  await waitForAdapter(page);
  for (const c of manifest.checkpoints!) await expect(card(page, c.name)).toHaveAttribute('data-status', 'ready', { timeout: 90_000 });
  await expect(card(page, manifest.checkpoints!.find((c) => c.role === 'mixing')!.name).getByTestId('checkpoint-role')).toHaveValue('mixing');
  for (const d of manifest.distributions!) await expect(taskLine(page, d.id)).toHaveAttribute('data-status', 'ready', { timeout: 60_000 });
  // The grid make-demo searched, with perplexity and task score per merge, and their rank correlation.
  await expect(page.getByTestId('search-row')).toHaveCount(manifest.tasks!.search.points.length);
  const rho = Number(await page.getByTestId('correlation').getAttribute('data-rho'));
  expect(rho).toBeCloseTo(manifest.tasks!.search.rankCorrelation, 12);
  // DEM's row in the table is the grid's perplexity-chosen merge, scored as the manifest recorded.
  const dem = page.locator('[data-testid="comparison-row"][data-kind="dem"]');
  expect(Number(await dem.getAttribute('data-mean-score'))).toBeCloseTo(manifest.tasks!.search.chosenByPerplexity.meanScore, 5);
  await expect(page.getByTestId('comparison-costs')).toContainText('Tokens trained: the fine-tunes together');
});
