import { fixtureDir } from './helpers/fixtures.ts';
import { expect, test } from './helpers/network.ts';
import { opfsPaths, storageSettled } from './helpers/storage.ts';
import { addFolder, addText, card, openStudio, waitForAdapter } from './helpers/studio.ts';

/**
 * A `?demo` link never deletes what the user has (src/main.tsx, src/store/demo.ts): with a saved
 * workspace the demo opens in a separate session that stores nothing, and the workspace, with its
 * stored files, is back on the next visit.
 */
const TEXT = 'The lighthouse keeper kept a ledger of every ship that passed the point.';

test('a ?demo link keeps an existing workspace and its stored files', async ({ page }) => {
  await openStudio(page);
  await waitForAdapter(page);
  await addFolder(page, fixtureDir('tiny-gpt2'), 'tiny-gpt2');
  await addText(page, 'my-text', TEXT);
  await storageSettled(page);
  const stored = await opfsPaths(page);
  expect(stored).toContain('workspace.json');
  expect(stored.some((p) => p.endsWith('/model.safetensors'))).toBe(true);

  // The link: the demo opens (its cards appear), the user is told where their workspace is.
  await page.goto('/?demo');
  await expect(card(page, 'base')).toBeVisible();
  await expect(card(page, 'ft-prose')).toBeVisible();
  await expect(card(page, 'tiny-gpt2')).toHaveCount(0);
  // Nothing of the user's was removed, and nothing of the demo was stored.
  expect(await opfsPaths(page)).toEqual(stored);
  await expect(page.getByTestId('notification').filter({ hasText: 'separate session' })).toBeVisible();

  // The next visit without ?demo: the user's workspace, from storage.
  await page.goto('/?nodemo');
  await expect(card(page, 'tiny-gpt2')).toHaveAttribute('data-status', 'ready');
  await expect(page.locator('[data-testid="validation-set"][data-name="my-text"]')).toHaveAttribute('data-status', 'ready');
  await expect(card(page, 'base')).toHaveCount(0);
  const after = await opfsPaths(page);
  expect(after).toEqual(expect.arrayContaining(stored));
  expect(after.filter((p) => p.includes('demo-'))).toEqual([]);
});
