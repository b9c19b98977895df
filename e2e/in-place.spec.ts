import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir } from './helpers/fixtures.ts';
import { expect, test } from './helpers/network.ts';
import { storageSettled } from './helpers/storage.ts';
import { addFolder, addText, card, openStudio, settledPpl, waitForAdapter } from './helpers/studio.ts';

/**
 * Checkpoints opened in place through the File System Access API (src/ui/files.ts, the in-place
 * part of src/store/storage.ts): read lazily through their file handles, never copied into the
 * studio's storage; their handles are kept in IndexedDB and the checkpoint comes back from them
 * after a reload. Headless Chromium cannot show a directory picker, so window.showDirectoryPicker
 * is replaced with one that hands out a folder the test wrote into the Origin Private File System
 * (OPFS handles are real FileSystemDirectoryHandles). Not testable here: the permission prompt
 * after a restart (OPFS handles are always readable); storage.test.ts covers that path with
 * handles whose permission is 'prompt'.
 */
const BASE = fixtureDir('tiny-gpt2');
const FT = fixtureDir('tiny-gpt2-ft-a');
const TEXT = 'The lighthouse keeper kept a ledger of every ship that passed the point.';

test('a checkpoint opened in place is read through its handles, not copied, and comes back after a reload', async ({ page }) => {
  const files = Object.fromEntries(readdirSync(BASE).map((f) => [f, [...readFileSync(join(BASE, f))]]));
  await page.addInitScript(() => {
    (window as unknown as { showDirectoryPicker: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker = async () =>
      (await (await navigator.storage.getDirectory()).getDirectoryHandle('picked')).getDirectoryHandle('tiny-gpt2');
  });
  // inPlace=0: every checkpoint opened through handles is read in place (the default threshold is 1 GiB).
  await openStudio(page, '/?inPlace=0');
  await waitForAdapter(page);
  await page.evaluate(async (data) => {
    const root = await navigator.storage.getDirectory();
    const dir = await (await root.getDirectoryHandle('picked', { create: true })).getDirectoryHandle('tiny-gpt2', { create: true });
    for (const [name, bytes] of Object.entries(data)) {
      const w = await (await dir.getFileHandle(name, { create: true })).createWritable();
      await w.write(new Uint8Array(bytes));
      await w.close();
    }
  }, files);

  await page.getByTestId('open-in-place').click();
  await expect(card(page, 'tiny-gpt2')).toHaveAttribute('data-status', 'ready');
  await addFolder(page, FT, 'tiny-gpt2-ft-a');
  await addText(page, 'prose', TEXT);
  const before = await settledPpl(page);
  await expect(page.locator('[data-testid="storage-in-place-item"][data-name="tiny-gpt2"]')).toBeVisible();
  await storageSettled(page);
  const stored = await page.evaluate(async () => {
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('dem-studio');
    type Dir = FileSystemDirectoryHandle & { keys(): AsyncIterable<string> };
    const ids: string[] = [];
    for await (const id of ((await root.getDirectoryHandle('checkpoints')) as Dir).keys()) ids.push(id);
    const json = JSON.parse(await (await (await root.getFileHandle('workspace.json')).getFile()).text()) as { state: { checkpoints: { id: string; name: string; inPlace?: boolean }[] } };
    return { ids, checkpoints: json.state.checkpoints.map((c) => ({ name: c.name, inPlace: c.inPlace ?? false, stored: ids.includes(c.id) })) };
  });
  // The fine-tune (picked through an <input>, no handles) is copied; the base opened in place is not.
  expect(stored.checkpoints).toEqual(
    expect.arrayContaining([
      { name: 'tiny-gpt2', inPlace: true, stored: false },
      { name: 'tiny-gpt2-ft-a', inPlace: false, stored: true },
    ]),
  );

  await page.reload();
  await expect(card(page, 'tiny-gpt2')).toHaveAttribute('data-status', 'ready');
  await expect(card(page, 'tiny-gpt2-ft-a')).toHaveAttribute('data-status', 'ready');
  expect(await settledPpl(page)).toEqual(before);
  await expect(page.locator('[data-testid="storage-in-place-item"][data-name="tiny-gpt2"]')).toBeVisible();
});
