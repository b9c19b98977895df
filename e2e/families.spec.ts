import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from './helpers/network.ts';
import { mergedPpl } from './helpers/cli.ts';
import { fixtureDir } from './helpers/fixtures.ts';
import { addFolder, card, coefficient, openStudio, settledPpl, waitForAdapter } from './helpers/studio.ts';

/**
 * A family of today in the studio: Gemma 2 (its own tokenizer with a BOS before every window,
 * (1 + w) norms, soft caps, a sliding window on every other layer). The card names what sets it
 * apart, its fine-tunes are compatible, and the perplexities the page shows for a merge equal
 * `dem ppl` for the same merge.
 */
const BASE = fixtureDir('tiny-gemma2');
const FT_A = fixtureDir('tiny-gemma2-ft-a');
const FT_B = fixtureDir('tiny-gemma2-ft-b');

test('Gemma 2: the card lists its features and the merge perplexities equal dem ppl', async ({ page }) => {
  await openStudio(page, '/?fresh');
  await waitForAdapter(page);
  // The texts first (they wait for a base): no clicks while SwiftShader is busy evaluating.
  const dir = await mkdtemp(join(tmpdir(), 'dem-gemma-texts-'));
  const files: string[] = [];
  for (const [name, chars] of [['prose', 400], ['code', 300]] as const) {
    const text = (await readFile(fixtureDir(`texts/${name}.txt`), 'utf8')).slice(0, chars);
    const file = join(dir, `${name}.txt`);
    await writeFile(file, text);
    files.push(file);
    await page.getByTestId('validation-name').fill(name);
    await page.getByTestId('validation-text').fill(text);
    await page.getByTestId('validation-add').click();
  }
  await addFolder(page, BASE, 'tiny-gemma2');
  await addFolder(page, FT_A, 'tiny-gemma2-ft-a');
  await addFolder(page, FT_B, 'tiny-gemma2-ft-b');
  const base = card(page, 'tiny-gemma2');
  await expect(base.getByTestId('checkpoint-arch')).toContainText('gemma2');
  await expect(base.getByTestId('checkpoint-features')).toContainText('final logit soft cap 6');
  await expect(base.getByTestId('checkpoint-features')).toContainText('sliding window 8 on 1 of 2 layers');
  await expect(card(page, 'tiny-gemma2-ft-a').getByTestId('compat')).toHaveAttribute('data-errors', '0');
  for (const name of ['prose', 'code']) await expect(page.locator(`[data-testid="validation-set"][data-name="${name}"]`)).toHaveAttribute('data-status', 'ready');

  const cli = await mergedPpl(BASE, [[FT_A, 0.4], [FT_B, 1]], files);
  await settledPpl(page);
  await coefficient(page, 'tiny-gemma2-ft-a').getByTestId('coefficient-slider-number').fill('0.4');
  const shown = await settledPpl(page);
  const got = [shown.prose!, shown.code!];
  console.log(`Gemma 2 studio vs dem ppl: ${JSON.stringify(got)} vs ${JSON.stringify(cli)}`);
  for (const [i, w] of cli.entries()) expect(Math.abs(got[i]! - w)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(w)));
});
