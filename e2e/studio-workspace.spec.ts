import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, test } from './helpers/network.ts';
import { configPpl, mergeTo, mergedPpl } from './helpers/cli.ts';
import { corruptCopy, fixtureDir, fixtureFiles } from './helpers/fixtures.ts';
import { addFolder, addText, card, coefficient, openStudio, settledPpl, waitForAdapter } from './helpers/studio.ts';

/**
 * The interactive DEM workspace in Chromium on SwiftShader: the numbers the page shows are
 * checked against the `dem` CLI (same engine in Node) for the same merge, so the Worker's
 * resident merge, the page's recipe and the CLI's agree.
 */
const BASE = fixtureDir('tiny-gpt2');
const FT_A = fixtureDir('tiny-gpt2-ft-a');
const FT_B = fixtureDir('tiny-gpt2-ft-b');
const SHOTS = process.env.UPDATE_SCREENSHOTS ? join('docs', 'screenshots') : 'test-results';

/** Short slices of the committed reference texts: two distributions, few windows each. */
async function texts(): Promise<{ name: string; text: string; file: string }[]> {
  const dir = await mkdtemp(join(tmpdir(), 'dem-texts-'));
  const out = [];
  for (const [name, chars] of [['prose', 400], ['code', 300]] as const) {
    const text = (await readFile(fixtureDir(`texts/${name}.txt`), 'utf8')).slice(0, chars);
    const file = join(dir, `${name}.txt`);
    await writeFile(file, text);
    out.push({ name, text, file });
  }
  return out;
}

async function workspace(page: Page, url = '/?fresh'): Promise<{ name: string; text: string; file: string }[]> {
  await openStudio(page, url);
  await waitForAdapter(page);
  await addFolder(page, BASE, 'tiny-gpt2');
  await addFolder(page, FT_A, 'tiny-gpt2-ft-a');
  await addFolder(page, FT_B, 'tiny-gpt2-ft-b');
  const t = await texts();
  for (const { name, text } of t) await expect(await addText(page, name, text)).toHaveAttribute('data-status', 'ready');
  return t;
}

/** |a − b| ≤ 1e-4 · max(1, |b|) for every text. */
function expectClose(got: number[], want: number[]): void {
  expect(got).toHaveLength(want.length);
  console.log(`studio vs dem ppl: max relative difference ${Math.max(...want.map((w, i) => Math.abs(got[i]! - w) / Math.abs(w))).toExponential(2)}`);
  for (const [i, w] of want.entries()) {
    const diff = Math.abs(got[i]! - w);
    expect(diff, `text ${i}: studio ${got[i]} vs CLI ${w}`).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(w)));
  }
}

/** Clicks a download button: the file's suggested name and text. */
async function downloaded(page: Page, testId: string): Promise<{ name: string; text: string }> {
  const download = page.waitForEvent('download');
  await page.getByTestId(testId).click();
  const file = await download;
  return { name: file.suggestedFilename(), text: await readFile((await file.path())!, 'utf8') };
}

/**
 * A table download's CSV and JSON, checked to hold the same rows, as objects keyed by column
 * (the fixtures' names need no quoting, so the CSV is split plainly).
 */
async function downloadedTable(page: Page, testId: string, name: string): Promise<Record<string, number>[]> {
  const csv = await downloaded(page, `${testId}-csv`);
  const json = await downloaded(page, `${testId}-json`);
  expect([csv.name, json.name]).toEqual([`${name}.csv`, `${name}.json`]);
  expect(csv.text).not.toContain('"');
  expect(csv.text.endsWith('\r\n')).toBe(true);
  const [head, ...lines] = csv.text.slice(0, -2).split('\r\n').map((l) => l.split(','));
  const rows = JSON.parse(json.text) as Record<string, number>[];
  expect(lines.map((cells) => Object.fromEntries(head!.map((c, i) => [c, Number(cells[i])])))).toEqual(rows);
  return rows;
}

test.describe('DEM workspace', () => {
  test('moving a slider re-merges and re-measures; the numbers equal dem ppl', async ({ page }) => {
    const t = await workspace(page);
    // Every fine-tune is compatible with the base, and lists so.
    await expect(card(page, 'tiny-gpt2-ft-a').getByTestId('compat')).toHaveAttribute('data-errors', '0');
    await expect(page.locator('[data-testid="validation-set"][data-name="prose"]').getByTestId('validation-tokens')).toHaveAttribute('data-tokens', /^\d+$/);

    const a = coefficient(page, 'tiny-gpt2-ft-a');
    await a.getByTestId('coefficient-slider-number').fill('0.3');
    const shown = await settledPpl(page);
    const cli = await mergedPpl(BASE, [[FT_A, 0.3], [FT_B, 1]], t.map((x) => x.file));
    expectClose([shown.prose!, shown.code!], cli);
    await expect(page.getByTestId('eval-timing')).toContainText(/merge \d+ ms/);
    await expect(page.getByTestId('eval-timing')).toContainText('resident');

    // Keyboard: the slider is labelled and moves by 0.01 per arrow press.
    const slider = page.getByRole('slider', { name: 'ω tiny-gpt2-ft-b' });
    await slider.focus();
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await expect(coefficient(page, 'tiny-gpt2-ft-b').getByTestId('coefficient-slider-number')).toHaveValue('0.98');
    const moved = await settledPpl(page);
    expectClose([moved.prose!, moved.code!], await mergedPpl(BASE, [[FT_A, 0.3], [FT_B, 0.98]], t.map((x) => x.file)));
    // Reference marks: the base's and each fine-tune's own perplexity are in the table.
    await expect(page.getByTestId('ppl-table')).toContainText('tiny-gpt2 (base)');
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(SHOTS, 'workspace.png') });

    // Per-layer mode: three anchors over depth become a mergekit gradient.
    await a.getByTestId('coefficient-layers').check();
    const anchors = a.getByTestId('anchor-slider-number');
    await expect(anchors).toHaveCount(3);
    for (const [i, v] of ['0', '0.5', '1.2'].entries()) await anchors.nth(i).fill(v);
    const layered = await settledPpl(page);
    const yml = join(await mkdtemp(join(tmpdir(), 'dem-yml-')), 'merge.yml');
    await writeFile(
      yml,
      `merge_method: task_arithmetic\nbase_model: ${BASE}\nmodels:\n  - model: ${FT_A}\n    parameters:\n      weight: [0, 0.5, 1.2]\n  - model: ${FT_B}\n    parameters:\n      weight: 0.98\n`,
    );
    expectClose([layered.prose!, layered.code!], await configPpl(yml, t.map((x) => x.file)));
  });

  test('a 2-vector grid search completes and its best row matches the CLI; apply sets the sliders', async ({ page }) => {
    const t = await workspace(page);
    await page.getByTestId('grid-min').fill('0');
    await page.getByTestId('grid-max').fill('1');
    await page.getByTestId('grid-step').fill('0.5');
    await page.getByTestId('grid-run').click();
    await expect(page.getByTestId('job')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
    await expect(page.getByTestId('job-count')).toHaveText('9/9');
    await expect(page.getByTestId('search-row')).toHaveCount(9);
    const best = page.locator('[data-testid="search-row"][data-best="true"]');
    const weights = ((await best.getAttribute('data-weights')) ?? '').split(',').map(Number);
    const ppls = await Promise.all(['prose', 'code'].map(async (n) => Number(await best.locator(`td[data-set="${n}"]`).getAttribute('data-value'))));
    expectClose(ppls, await mergedPpl(BASE, [[FT_A, weights[0]!], [FT_B, weights[1]!]], t.map((x) => x.file)));
    // The optimum is the row with the lowest average.
    const all = await page.getByTestId('search-row').evaluateAll((rows) =>
      rows.map((r) => [...r.querySelectorAll('td[data-set]')].map((c) => Number(c.getAttribute('data-value')))).map((p) => p.reduce((s, x) => s + x, 0) / p.length),
    );
    expect(Math.min(...all)).toBeCloseTo((ppls[0]! + ppls[1]!) / 2, 9);
    // The search table downloads as CSV and JSON holding the numbers on screen, row for row.
    const shown = await page.getByTestId('search-row').evaluateAll((rows) =>
      rows.map((r) => ({
        id: Number(r.querySelector('td')!.textContent),
        weights: r.getAttribute('data-weights')!.split(',').map(Number),
        ppls: ['prose', 'code'].map((n) => Number(r.querySelector(`td[data-set="${n}"]`)!.getAttribute('data-value'))),
      })),
    );
    const grid = await downloadedTable(page, 'search-download', 'grid-search');
    expect(Object.keys(grid[0]!)).toEqual(['#', 'ω tiny-gpt2-ft-a', 'ω tiny-gpt2-ft-b', 'ppl prose', 'ppl code', 'mean ppl']);
    expect(grid.map((r) => r['#']).sort()).toEqual(shown.map((r) => r.id).sort());
    for (const row of grid) {
      const on = shown.find((r) => r.id === row['#'])!;
      expect([row['ω tiny-gpt2-ft-a'], row['ω tiny-gpt2-ft-b']]).toEqual(on.weights);
      expect([row['ppl prose'], row['ppl code']]).toEqual(on.ppls);
      expect(row['mean ppl']).toBeCloseTo((on.ppls[0]! + on.ppls[1]!) / 2, 9);
    }
    await best.getByTestId('search-apply').click();
    await expect(coefficient(page, 'tiny-gpt2-ft-a').getByTestId('coefficient-slider-number')).toHaveValue(String(weights[0]));
    await expect(coefficient(page, 'tiny-gpt2-ft-b').getByTestId('coefficient-slider-number')).toHaveValue(String(weights[1]));
    const applied = await settledPpl(page);
    expectClose([applied.prose!, applied.code!], ppls);

    // The understanding views: layer distances and a 3-point sweep.
    await page.getByTestId('layers-run').click();
    await expect(page.getByTestId('layers-panel')).toHaveAttribute('data-status', 'done');
    await expect(page.getByTestId('layers-table').locator('tbody tr')).toHaveCount(2);
    // The sweep over ft-a's ω at 0, 0.5, 1 (ft-b held at the applied weight) measures merges the
    // grid measured: its download holds the grid table's numbers for them.
    const sweepRange = page.getByTestId('sweep').locator('input[type="number"]');
    await sweepRange.nth(0).fill('0');
    await sweepRange.nth(1).fill('1');
    await sweepRange.nth(2).fill('3');
    await page.getByTestId('sweep-run').click();
    await expect(page.getByTestId('job')).toHaveAttribute('data-kind', 'sweep');
    await expect(page.getByTestId('job')).toHaveAttribute('data-status', 'done');
    const sweep = await downloadedTable(page, 'sweep-download', 'sweep');
    expect(sweep.map((r) => [r['ω tiny-gpt2-ft-a'], r['ω tiny-gpt2-ft-b']])).toEqual([0, 0.5, 1].map((x) => [x, weights[1]]));
    for (const row of sweep) {
      const same = grid.find((g) => g['ω tiny-gpt2-ft-a'] === row['ω tiny-gpt2-ft-a'] && g['ω tiny-gpt2-ft-b'] === row['ω tiny-gpt2-ft-b'])!;
      expect([row['ppl prose'], row['ppl code'], row['mean ppl']]).toEqual([same['ppl prose'], same['ppl code'], same['mean ppl']]);
    }
    await page.getByTestId('heatmap').locator('input[type="number"]').nth(2).fill('2');
    await page.getByTestId('heatmap-run').click();
    await expect(page.getByTestId('job')).toHaveAttribute('data-kind', 'heatmap');
    await expect(page.getByTestId('job')).toHaveAttribute('data-status', 'done');
    await expect(page.getByTestId('heatmap-svg').locator('rect')).toHaveCount(4);
    // A greedy continuation from the current merge.
    await page.getByTestId('gen-run').click();
    await expect(page.getByTestId('gen-output')).not.toContainText('continues the prompt here');
    await page.screenshot({ path: join(SHOTS, 'search.png'), fullPage: true });
  });

  test('export downloads a zip whose files equal dem merge output', async ({ page }) => {
    await workspace(page);
    await coefficient(page, 'tiny-gpt2-ft-a').getByTestId('coefficient-slider-number').fill('0.5');
    await coefficient(page, 'tiny-gpt2-ft-b').getByTestId('coefficient-slider-number').fill('-0.25');
    await settledPpl(page);
    const download = page.waitForEvent('download');
    await page.getByTestId('export-zip').click();
    const zipPath = join(await mkdtemp(join(tmpdir(), 'dem-zip-')), 'merged.zip');
    await (await download).saveAs(zipPath);
    await expect(page.getByTestId('export-panel')).toHaveAttribute('data-status', 'done');
    const unzipped = join(zipPath, '..', 'studio');
    execFileSync('unzip', ['-q', zipPath, '-d', unzipped]);
    const cli = join(zipPath, '..', 'cli');
    await mergeTo(BASE, [[FT_A, 0.5], [FT_B, -0.25]], cli);
    for (const name of ['model.safetensors', 'config.json', 'tokenizer.json']) {
      const [s, c] = await Promise.all([readFile(join(unzipped, name)), readFile(join(cli, name))]);
      expect(Buffer.compare(s, c), `${name} differs from dem merge`).toBe(0);
    }
    expect((await readdir(unzipped)).sort()).toEqual(expect.arrayContaining(['dem-recipe.json', 'mergekit_config.yml', 'README.md']));
    const recipe = JSON.parse(await readFile(join(unzipped, 'dem-recipe.json'), 'utf8'));
    expect(recipe.models.map((m: { parameters: { weight: number } }) => m.parameters.weight)).toEqual([0.5, -0.25]);
  });

  test('bad inputs show a message and keep the workspace', async ({ page }) => {
    await workspace(page);
    const before = await settledPpl(page);

    // A fine-tune of another architecture: every mismatch listed, left out of the merge.
    await addFolder(page, fixtureDir('tiny-llama-ft-a'), 'tiny-llama-ft-a');
    const compat = card(page, 'tiny-llama-ft-a').getByTestId('compat');
    await expect(compat).toHaveAttribute('data-errors', /[1-9]/);
    await expect(compat.getByTestId('compat-list').locator('li').first()).toBeVisible();
    await expect(coefficient(page, 'tiny-llama-ft-a')).toHaveCount(0);

    // A corrupt safetensors file: named in the card and a notification.
    const broken = await corruptCopy(BASE, 'model.safetensors');
    await page.getByTestId('folder-input').setInputFiles(broken.dir);
    await expect(card(page, 'corrupt')).toHaveAttribute('data-status', 'failed');
    await expect(card(page, 'corrupt').getByTestId('checkpoint-error')).toContainText('model.safetensors');

    // An unsupported model type.
    const bert = join(await mkdtemp(join(tmpdir(), 'dem-bert-')), 'tiny-bert');
    await mkdir(bert);
    for (const f of await fixtureFiles(BASE)) await copyFile(f, join(bert, f.slice(BASE.length + 1)));
    const config = JSON.parse(await readFile(join(bert, 'config.json'), 'utf8'));
    await writeFile(join(bert, 'config.json'), JSON.stringify({ ...config, model_type: 'bert', architectures: ['BertModel'] }));
    await page.getByTestId('folder-input').setInputFiles(bert);
    await expect(card(page, 'tiny-bert')).toHaveAttribute('data-status', 'failed');
    await expect(card(page, 'tiny-bert').getByTestId('checkpoint-error')).toContainText(/bert/i);

    // Empty text.
    const empty = await addText(page, 'blank', '   \n ');
    await expect(empty).toHaveAttribute('data-status', 'failed');
    await expect(empty.getByTestId('validation-error')).toContainText('empty');

    // Everything loaded before still merges to the same numbers.
    for (const name of ['tiny-gpt2', 'tiny-gpt2-ft-a', 'tiny-gpt2-ft-b']) await expect(card(page, name)).toHaveAttribute('data-status', 'ready');
    await coefficient(page, 'tiny-gpt2-ft-a').getByTestId('coefficient-slider-number').fill('1');
    expect(await settledPpl(page)).toEqual(before);
    await page.screenshot({ path: join(SHOTS, 'bad-inputs.png'), fullPage: true });
  });

  test('GPU out of memory is reported and nothing is lost', async ({ page }) => {
    // A 64 kB GPU budget: the base alone (184 kB) does not fit.
    await openStudio(page, '/?fresh&gpuBudget=65536');
    await waitForAdapter(page);
    await addFolder(page, BASE, 'tiny-gpt2');
    await addFolder(page, FT_A, 'tiny-gpt2-ft-a');
    await addText(page, 'prose', 'The lighthouse keeper kept a ledger of every ship that passed the point.');
    // The memory plan refuses before loading, naming the shortfall.
    await expect(page.getByTestId('eval-error')).toContainText(/not enough GPU memory: .* short by /i);
    await expect(card(page, 'tiny-gpt2')).toHaveAttribute('data-status', 'ready');
    await expect(card(page, 'tiny-gpt2-ft-a')).toHaveAttribute('data-status', 'ready');
    await expect(page.locator('[data-testid="validation-set"][data-name="prose"]')).toHaveAttribute('data-status', 'ready');
  });

  test('the workspace survives a reload', async ({ page }) => {
    await openStudio(page, '/');
    await waitForAdapter(page);
    await addFolder(page, BASE, 'tiny-gpt2');
    await addFolder(page, FT_A, 'tiny-gpt2-ft-a');
    await addText(page, 'prose', 'The lighthouse keeper kept a ledger of every ship that passed the point.');
    await coefficient(page, 'tiny-gpt2-ft-a').getByTestId('coefficient-slider-number').fill('0.42');
    const before = await settledPpl(page);
    await page.getByTestId('method-picker').selectOption('task_arithmetic');
    // zustand persist writes on every change; give IndexedDB a moment.
    await page.waitForTimeout(500);
    await page.reload();
    await expect(card(page, 'tiny-gpt2')).toHaveAttribute('data-status', 'ready');
    await expect(card(page, 'tiny-gpt2-ft-a')).toHaveAttribute('data-status', 'ready');
    await expect(card(page, 'tiny-gpt2')).toBeVisible();
    await expect(coefficient(page, 'tiny-gpt2-ft-a').getByTestId('coefficient-slider-number')).toHaveValue('0.42');
    await expect(page.locator('[data-testid="validation-set"][data-name="prose"]')).toHaveAttribute('data-status', 'ready');
    expect(await settledPpl(page)).toEqual(before);
  });
});
