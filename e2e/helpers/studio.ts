import { expect, type Locator, type Page } from '@playwright/test';

/** Page-level helpers over the studio's data-testids. */
export async function openStudio(page: Page): Promise<void> {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/');
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
