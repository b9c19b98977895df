import { expect, type Page } from '@playwright/test';

/** The studio's own storage (src/store/storage.ts, src/ui/StoragePanel.tsx) as specs observe it. */

/** Waits until every copy into OPFS is done and workspace.json is written. */
export async function storageSettled(page: Page): Promise<void> {
  const panel = page.getByTestId('storage-panel');
  await expect(panel).toHaveAttribute('data-copying', '0');
  await expect(panel).toHaveAttribute('data-saving', 'false');
}

/** Paths under the studio's OPFS folder, read in the page, sorted. */
export async function opfsPaths(page: Page): Promise<string[]> {
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
