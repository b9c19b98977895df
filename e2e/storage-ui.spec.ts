import type { Page } from '@playwright/test';
import { fixtureDir } from './helpers/fixtures.ts';
import { expect, test } from './helpers/network.ts';
import { opfsPaths, storageSettled } from './helpers/storage.ts';
import { addFolder, addText, card, openStudio, settledPpl, waitForAdapter } from './helpers/studio.ts';

/**
 * The studio's own use of OPFS (src/store/storage.ts, src/ui/StoragePanel.tsx): checkpoints the
 * user adds are copied into the Origin Private File System and come back from there after a
 * reload; a full quota is reported and the workspace keeps working from memory.
 */
const BASE = fixtureDir('tiny-gpt2');
const FT_A = fixtureDir('tiny-gpt2-ft-a');
const TEXT = 'The lighthouse keeper kept a ledger of every ship that passed the point.';

function storedItem(page: Page, name: string) {
  return page.locator(`[data-testid="storage-item"][data-name="${name}"]`);
}

test('a checkpoint the user added comes back from OPFS after a reload; a deleted stored file asks for re-selection', async ({ page }) => {
  await openStudio(page);
  await waitForAdapter(page);
  await addFolder(page, BASE, 'tiny-gpt2');
  await addFolder(page, FT_A, 'tiny-gpt2-ft-a');
  await addText(page, 'prose', TEXT);
  const before = await settledPpl(page);
  await expect(storedItem(page, 'tiny-gpt2')).toHaveAttribute('data-kind', 'checkpoint');
  await expect(storedItem(page, 'tiny-gpt2-ft-a')).toBeVisible();
  await expect(storedItem(page, 'prose')).toHaveAttribute('data-kind', 'text');
  await storageSettled(page);
  const paths = await opfsPaths(page);
  expect(paths).toContain('workspace.json');
  expect(paths.filter((p) => p.endsWith('/model.safetensors'))).toHaveLength(2);
  const usage = page.getByTestId('storage-usage');
  const stored = Number(await usage.getAttribute('data-stored'));
  expect(stored).toBeGreaterThan(2 * 190_000);
  expect(Number(await usage.getAttribute('data-quota'))).toBeGreaterThan(stored);

  await page.reload();
  await expect(card(page, 'tiny-gpt2')).toHaveAttribute('data-status', 'ready');
  await expect(card(page, 'tiny-gpt2-ft-a')).toHaveAttribute('data-status', 'ready');
  expect(await settledPpl(page)).toEqual(before);
  // Nothing of the workspace went to IndexedDB: it came back from OPFS.
  expect(await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))).not.toContain('dem-studio');

  // A stored file that vanished (cleared by the browser, say): the card asks for the folder again.
  const ftPath = paths.find((p) => p.endsWith('/model.safetensors') && !paths.includes(p.replace('model.safetensors', 'x')))!;
  const ftId = await page.evaluate(async () => {
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('dem-studio');
    const json = JSON.parse(await (await (await root.getFileHandle('workspace.json')).getFile()).text()) as { state: { checkpoints: { id: string; name: string }[] } };
    const id = json.state.checkpoints.find((c) => c.name === 'tiny-gpt2-ft-a')!.id;
    await (await (await root.getDirectoryHandle('checkpoints')).getDirectoryHandle(id)).removeEntry('model.safetensors');
    return id;
  });
  expect(ftPath).toBeTruthy();
  await page.reload();
  await expect(card(page, 'tiny-gpt2')).toHaveAttribute('data-status', 'ready');
  await expect(card(page, 'tiny-gpt2-ft-a')).toHaveAttribute('data-status', 'failed');
  await expect(card(page, 'tiny-gpt2-ft-a').getByTestId('checkpoint-error')).toContainText('again');
  await expect(page.locator('[data-testid="storage-missing-item"][data-name="tiny-gpt2-ft-a"]')).toContainText('model.safetensors');
  expect(ftId).toMatch(/\w/);
});

test('storage full while adding a checkpoint: the message shows, the workspace keeps working, nothing stored is harmed', async ({ page, context }) => {
  await openStudio(page);
  await waitForAdapter(page);
  await addFolder(page, BASE, 'tiny-gpt2');
  await addText(page, 'prose', TEXT);
  await storageSettled(page);
  const baseSize = await storedItem(page, 'tiny-gpt2').getAttribute('data-size');
  const origin = new URL(page.url()).origin;
  const cdp = await context.newCDPSession(page);
  const used = await page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0);
  // Room for workspace.json, not for a 196 kB checkpoint.
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: used + 48 * 1024 });
  try {
    await addFolder(page, FT_A, 'tiny-gpt2-ft-a');
    const notice = page.getByTestId('notification').filter({ hasText: 'tiny-gpt2-ft-a' });
    await expect(notice).toContainText('not enough browser storage');
    await expect(page.getByTestId('storage-not-stored')).toContainText('not enough browser storage');
    await storageSettled(page);
    // The fine-tune works from the in-memory File: it merges and its perplexity is measured.
    await expect(card(page, 'tiny-gpt2-ft-a')).toHaveAttribute('data-status', 'ready');
    const ppl = await settledPpl(page);
    expect(ppl.prose).toBeGreaterThan(1);
    await expect(storedItem(page, 'tiny-gpt2-ft-a')).toHaveCount(0);
    await expect(storedItem(page, 'tiny-gpt2')).toHaveAttribute('data-size', baseSize!);
    expect((await opfsPaths(page)).filter((p) => p.includes('.partial-'))).toEqual([]);
  } finally {
    await cdp.send('Storage.overrideQuotaForOrigin', { origin });
  }
});

test('the storage panel removes one item and clears everything after confirmation', async ({ page }) => {
  await openStudio(page);
  await waitForAdapter(page);
  await addFolder(page, BASE, 'tiny-gpt2');
  await addText(page, 'prose', TEXT);
  await storageSettled(page);
  await storedItem(page, 'prose').getByRole('button', { name: /Remove stored text/ }).click();
  await expect(page.locator('[data-testid="validation-set"][data-name="prose"]')).toHaveCount(0);
  await expect(storedItem(page, 'prose')).toHaveCount(0);
  await page.getByTestId('storage-clear').click();
  await page.getByTestId('storage-clear-confirm').click();
  await expect(page.getByTestId('storage-empty')).toBeVisible();
  await expect(page.getByTestId('checkpoint-card')).toHaveCount(0);
  await storageSettled(page);
  expect((await opfsPaths(page)).filter((p) => p !== 'workspace.json')).toEqual([]);
});
