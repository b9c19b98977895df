import type { Page } from '@playwright/test';
import { fixtureDir } from './helpers/fixtures.ts';
import { expect, test } from './helpers/network.ts';
import { addFolder, addText, card, openStudio, waitForAdapter } from './helpers/studio.ts';

/**
 * A `?demo` link never deletes what the user has (src/main.tsx, src/store/demo.ts): with a saved
 * workspace the demo opens in a separate session that stores nothing, and the workspace, with its
 * stored files, is back on the next visit.
 */
const TEXT = 'The lighthouse keeper kept a ledger of every ship that passed the point.';

/** Paths under the studio's OPFS folder, read in the page. */
async function opfsPaths(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const out: string[] = [];
    type Dir = FileSystemDirectoryHandle & { entries(): AsyncIterable<[string, FileSystemHandle]> };
    const walk = async (d: Dir, at: string): Promise<void> => {
      for await (const [name, h] of d.entries()) {
        if (h.kind === 'directory') await walk(h as Dir, `${at}${name}/`);
        else out.push(`${at}${name}`);
      }
    };
    const root = await navigator.storage.getDirectory();
    await walk((await root.getDirectoryHandle('dem-studio', { create: true })) as Dir, '');
    return out.sort();
  });
}

test('a ?demo link keeps an existing workspace and its stored files', async ({ page }) => {
  await openStudio(page);
  await waitForAdapter(page);
  await addFolder(page, fixtureDir('tiny-gpt2'), 'tiny-gpt2');
  await addText(page, 'my-text', TEXT);
  const panel = page.getByTestId('storage-panel');
  await expect(panel).toHaveAttribute('data-copying', '0');
  await expect(panel).toHaveAttribute('data-saving', 'false');
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
