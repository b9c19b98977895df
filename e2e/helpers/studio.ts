import { expect, type Locator, type Page } from '@playwright/test';

/** Page-level helpers over the studio's data-testids. */
export async function openStudio(page: Page, url = '/'): Promise<void> {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // The demo workspace loads on a first visit; flows that build their own workspace opt out.
  await page.goto(/demo/.test(url) ? url : `${url}${url.includes('?') ? '&' : '?'}nodemo`);
  await expect(page.getByRole('heading', { name: /DEM Studio/ })).toBeVisible();
  expect(errors, 'uncaught page errors').toEqual([]);
}

/** Waits for the engine Worker to report a GPU adapter; returns the shown "vendor · architecture". */
export async function waitForAdapter(page: Page): Promise<string> {
  const status = page.getByTestId('gpu-status');
  await expect(status).toHaveAttribute('data-status', /ready|unavailable|lost|crashed/);
  const state = await status.getAttribute('data-status');
  if (state !== 'ready') {
    throw new Error(`GPU status '${state}': ${await page.getByTestId('gpu-banner').textContent().catch(() => '(no banner)')}`);
  }
  return (await page.getByTestId('gpu-adapter').textContent()) ?? '';
}

export function card(page: Page, name: string): Locator {
  return page.locator(`[data-testid="checkpoint-card"][data-name="${name}"]`);
}

/** Adds a checkpoint folder through the folder picker and waits for its card to be ready. */
export async function addFolder(page: Page, dir: string, name: string): Promise<void> {
  await page.getByTestId('folder-input').setInputFiles(dir);
  await expect(card(page, name)).toHaveAttribute('data-status', 'ready');
}

/** Pastes a named validation text and waits until it is tokenized. */
export async function addText(page: Page, name: string, text: string): Promise<Locator> {
  await page.getByTestId('validation-name').fill(name);
  await page.getByTestId('validation-text').fill(text);
  await page.getByTestId('validation-add').click();
  const set = page.locator(`[data-testid="validation-set"][data-name="${name}"]`);
  await expect(set).toHaveAttribute('data-status', /ready|failed/);
  return set;
}

export function coefficient(page: Page, name: string): Locator {
  return page.locator(`[data-testid="coefficient"][data-name="${name}"]`);
}

/** Waits until the perplexities shown are those of the current merge; returns them by set name. */
export async function settledPpl(page: Page): Promise<Record<string, number>> {
  await expect(page.getByTestId('eval-status')).toHaveAttribute('data-status', 'done');
  const rows = page.getByTestId('ppl-row');
  const out: Record<string, number> = {};
  for (const row of await rows.all()) {
    const name = (await row.getAttribute('data-name')) ?? '';
    out[name] = Number(await row.getByTestId('ppl-merged').getAttribute('data-value'));
  }
  return out;
}
