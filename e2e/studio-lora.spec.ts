import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from './helpers/network.ts';
import { mergedPpl } from './helpers/cli.ts';
import { fixtureDir } from './helpers/fixtures.ts';
import { addFolder, addText, card, coefficient, openStudio, settledPpl, waitForAdapter } from './helpers/studio.ts';

/**
 * A PEFT LoRA adapter folder added as a fine-tune: its card says what it is, it gets a slider like
 * a full fine-tune, and the perplexity the studio shows for a merge of both (the Worker's resident
 * merge keeps the adapter factored) equals `dem ppl` streaming the same merge.
 */
const BASE = fixtureDir('tiny-gpt2');
const FT_A = fixtureDir('tiny-gpt2-ft-a');
const LORA = fixtureDir('tiny-gpt2-lora');

test('a LoRA adapter joins the workspace as a distribution vector; the numbers equal dem ppl', async ({ page }) => {
  await openStudio(page, '/?fresh');
  await waitForAdapter(page);
  await addFolder(page, BASE, 'tiny-gpt2');
  await addFolder(page, FT_A, 'tiny-gpt2-ft-a');
  await addFolder(page, LORA, 'tiny-gpt2-lora');
  await expect(card(page, 'tiny-gpt2-lora').getByTestId('checkpoint-lora')).toContainText('r 2/4, α 8, 4 matrices');
  await expect(card(page, 'tiny-gpt2-lora').getByTestId('compat')).toHaveAttribute('data-errors', '0');

  const dir = await mkdtemp(join(tmpdir(), 'dem-lora-texts-'));
  const text = (await readFile(fixtureDir('texts/prose.txt'), 'utf8')).slice(0, 400);
  const file = join(dir, 'prose.txt');
  await writeFile(file, text);
  await expect(await addText(page, 'prose', text)).toHaveAttribute('data-status', 'ready');

  await coefficient(page, 'tiny-gpt2-ft-a').getByTestId('coefficient-slider-number').fill('0.7');
  await coefficient(page, 'tiny-gpt2-lora').getByTestId('coefficient-slider-number').fill('0.5');
  const shown = await settledPpl(page);
  const [cli] = await mergedPpl(BASE, [[FT_A, 0.7], [LORA, 0.5]], [file]);
  console.log(`studio ${shown.prose} vs dem ppl ${cli}`);
  expect(Math.abs(shown.prose! - cli!)).toBeLessThanOrEqual(1e-4 * Math.abs(cli!));
  await expect(page.getByTestId('eval-timing')).toContainText('resident');
});
