import { expect, test } from './helpers/network.ts';
import { fixtureDir } from './helpers/fixtures.ts';
import { addFolder, coefficient, openStudio } from './helpers/studio.ts';
import type { Page } from '@playwright/test';

/**
 * Web-app habits: a layout for every screen (one breakpoint, no horizontal overflow at 390 px or
 * 1280 px), dark mode from the system setting, undo/redo with the keyboard, the recipe in the URL
 * and importing a mergekit YAML. Only checkpoint inspection runs here (no validation text, so no
 * perplexity is measured): each test stays a few seconds on SwiftShader.
 */
const GPT2 = fixtureDir('tiny-gpt2');
const FT_A = fixtureDir('tiny-gpt2-ft-a');
const FT_B = fixtureDir('tiny-gpt2-ft-b');

async function loadThree(page: Page): Promise<void> {
  await addFolder(page, GPT2, 'tiny-gpt2');
  await addFolder(page, FT_A, 'tiny-gpt2-ft-a');
  await addFolder(page, FT_B, 'tiny-gpt2-ft-b');
  await expect(coefficient(page, 'tiny-gpt2-ft-b')).toBeVisible();
}

/** Elements wider than the viewport or sticking out of their panel, as "selector: why". */
async function overflow(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > width) out.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
    for (const panel of document.querySelectorAll<HTMLElement>('.workspace .panel, .workspace section')) {
      const box = panel.getBoundingClientRect();
      if (box.width === 0) continue;
      if (box.left < -0.5 || box.right > width + 0.5) out.push(`${panel.dataset.testid ?? panel.className} outside the viewport (${box.left}..${box.right} of ${width})`);
      for (const el of panel.querySelectorAll<HTMLElement>('input, select, button, label')) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || el.closest('.table-scroll, .visually-hidden') || el.classList.contains('visually-hidden')) continue;
        if (r.right > box.right + 0.5) out.push(`${el.dataset.testid ?? el.tagName} in ${panel.dataset.testid ?? panel.className} overflows by ${(r.right - box.right).toFixed(1)} px`);
      }
    }
    return out;
  });
}

test('layout: no sideways overflow at 390 px (columns stacked) and 1280 px (side by side); dark mode follows the system', async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await openStudio(page);
  await loadThree(page);
  expect(await overflow(page)).toEqual([]);
  const columns = async () => page.evaluate(() => [...document.querySelectorAll('.workspace__inputs, .workspace__merge')].map((e) => Math.round(e.getBoundingClientRect().left)));
  const [inputsLeft, mergeLeft] = await columns();
  expect(mergeLeft!).toBeGreaterThan(inputsLeft! + 300);
  await page.setViewportSize({ width: 390, height: 844 });
  expect(await overflow(page)).toEqual([]);
  const [a, b] = await columns();
  expect(a).toBe(b);

  const luminance = async () =>
    page.evaluate(() => {
      const [r, g, b] = getComputedStyle(document.body.parentElement!).backgroundColor.match(/\d+/g)!.map(Number);
      return (0.2126 * r! + 0.7152 * g! + 0.0722 * b!) / 255;
    });
  await page.emulateMedia({ colorScheme: 'light' });
  expect(await luminance()).toBeGreaterThan(0.8);
  await page.emulateMedia({ colorScheme: 'dark' });
  expect(await luminance()).toBeLessThan(0.2);
});

test('Ctrl+Z / Ctrl+Shift+Z undo and redo; the recipe is in the URL and applies in a fresh page; a mergekit YAML imports', async ({ page, browser }) => {
  await openStudio(page);
  await loadThree(page);
  const number = (name: string) => coefficient(page, name).getByTestId('coefficient-slider-number');
  await number('tiny-gpt2-ft-a').fill('0.4');
  await expect(number('tiny-gpt2-ft-a')).toHaveValue('0.4');
  await page.getByTestId('method-picker').focus();
  await page.waitForTimeout(700); // a new step (changes closer together are one)
  await page.getByTestId('method-picker').selectOption('ties');
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('Control+z');
  await expect(page.getByTestId('method-picker')).toHaveValue('task_arithmetic');
  await page.keyboard.press('Control+z');
  await expect(number('tiny-gpt2-ft-a')).toHaveValue('1');
  await page.keyboard.press('Control+Shift+z');
  await expect(number('tiny-gpt2-ft-a')).toHaveValue('0.4');
  await page.getByTestId('redo').click();
  await expect(page.getByTestId('method-picker')).toHaveValue('ties');

  // The URL names the fine-tunes; a fresh page (no saved workspace) applies it once they load.
  await expect.poll(() => decodeURIComponent(new URL(page.url()).hash)).toContain('"model":"tiny-gpt2-ft-a","parameters":{"weight":0.4}');
  const hash = new URL(page.url()).hash;
  const context = await browser.newContext();
  const fresh = await context.newPage();
  await openStudio(fresh, `/?nodemo${hash}`);
  await addFolder(fresh, GPT2, 'tiny-gpt2');
  await addFolder(fresh, FT_A, 'tiny-gpt2-ft-a');
  await addFolder(fresh, FT_B, 'tiny-gpt2-ft-b');
  await expect(fresh.getByTestId('method-picker')).toHaveValue('ties');
  await expect(coefficient(fresh, 'tiny-gpt2-ft-a').getByTestId('coefficient-slider-number')).toHaveValue('0.4');
  await context.close();

  // Import: a YAML as `dem merge` exports it (folders as relative paths) applies by folder name.
  const yaml = 'merge_method: task_arithmetic\nbase_model: ../fixtures/tiny-gpt2\nmodels:\n  - model: ../fixtures/tiny-gpt2-ft-a\n    parameters: {weight: 0.25}\n  - model: ../fixtures/tiny-gpt2-ft-b\n    parameters: {weight: -0.5}\nparameters: {lambda: 0.9}\n';
  await page.getByTestId('import-recipe').setInputFiles({ name: 'mergekit_config.yml', mimeType: 'application/yaml', buffer: Buffer.from(yaml) });
  await expect(page.getByTestId('import-status')).toHaveText('mergekit_config.yml applied');
  await expect(page.getByTestId('method-picker')).toHaveValue('task_arithmetic');
  await expect(number('tiny-gpt2-ft-a')).toHaveValue('0.25');
  await expect(number('tiny-gpt2-ft-b')).toHaveValue('-0.5');
  await expect(page.getByTestId('param-lambda')).toHaveValue('0.9');
  await page.getByTestId('import-recipe').setInputFiles({ name: 'bad.yml', mimeType: 'application/yaml', buffer: Buffer.from('merge_method: ties\nslices: []\n') });
  await expect(page.getByTestId('import-status')).toContainText('bad.yml: slices: only `models:` configs are supported');
});

test('heat map: viridis cells with a legend, reachable by keyboard, as a table; a cell sets both coefficients; tables download as CSV/JSON', async ({ page }) => {
  await openStudio(page);
  await loadThree(page);
  await page.getByTestId('validation-name').fill('prose');
  await page.getByTestId('validation-text').fill('The lighthouse keeper walked along the shore. The sea was calm and the night was long.');
  await page.getByTestId('validation-add').click();
  const heat = page.getByTestId('heatmap');
  await heat.locator('input[type="number"]').nth(2).fill('2');
  await page.getByTestId('heatmap-run').click();
  const cells = page.getByTestId('heatmap-svg-cell');
  await expect(cells).toHaveCount(4, { timeout: 120_000 });
  await expect(page.getByTestId('heatmap-svg-legend')).toBeVisible();
  // Viridis ends: the lowest value's cell is dark purple-ish, the highest yellow-ish.
  const fills = await page.getByTestId('heatmap-svg').locator('rect').evaluateAll((rs) => rs.map((r) => r.getAttribute('fill')));
  expect(fills).toContain('rgb(68,1,84)');
  expect(fills).toContain('rgb(253,231,37)');
  // Keyboard: focus a cell and press Enter → both coefficients take its coordinates.
  const last = cells.nth(3);
  const label = (await last.getAttribute('aria-label'))!;
  const [, x, y] = /ω tiny-gpt2-ft-a (\S+), ω tiny-gpt2-ft-b (\S+):/.exec(label)!;
  await last.focus();
  await page.keyboard.press('Enter');
  await expect(coefficient(page, 'tiny-gpt2-ft-a').getByTestId('coefficient-slider-number')).toHaveValue(String(Number(x)));
  await expect(coefficient(page, 'tiny-gpt2-ft-b').getByTestId('coefficient-slider-number')).toHaveValue(String(Number(y)));
  await page.getByTestId('heatmap-svg-table-toggle').click();
  await expect(page.getByTestId('heatmap-svg-table').locator('tbody td')).toHaveCount(4);
  // The perplexity table as CSV.
  const download = page.waitForEvent('download');
  await page.getByTestId('ppl-download-csv').click();
  const csv = await (await download).createReadStream().then(async (s) => {
    const chunks: Buffer[] = [];
    for await (const c of s) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  });
  expect(csv.split('\r\n')[0]).toMatch(/^set,merge,/);
  expect(csv).toContain('prose,');
});
