import { expect, test, type Page, type Request } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The built studio (vite build + preview): installable, works with the network off after one
 * visit, and talks to no origin but its own.
 */
const ORIGIN = 'http://localhost:4173';
const FIXTURE = join(import.meta.dirname, 'fixtures', 'tiny-gpt2');

function recordForeignRequests(page: Page): Request[] {
  const foreign: Request[] = [];
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(ORIGIN) && !url.startsWith('data:') && !url.startsWith('blob:')) foreign.push(r);
  });
  return foreign;
}

async function waitForServiceWorker(page: Page): Promise<void> {
  await page.waitForFunction(async () => {
    const reg = await navigator.serviceWorker.getRegistration();
    return !!reg?.active && reg.active.state === 'activated';
  }, undefined, { timeout: 60_000 });
}

test('the built page carries a CSP that allows only its own origin', async ({ page }) => {
  const foreign = recordForeignRequests(page);
  await page.goto('/');
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(csp).toContain("default-src 'self'");
  expect(csp).toContain("connect-src 'self'");
  // A fetch to another origin is refused by the browser before any request leaves.
  const outcome = await page.evaluate(async () => {
    try {
      await fetch('https://example.com/collect', { mode: 'no-cors' });
      return 'sent';
    } catch {
      return 'blocked';
    }
  });
  expect(outcome).toBe('blocked');
  expect(foreign.map((r) => r.url())).toEqual([]);
  const manifest = await page.locator('link[rel="manifest"]').getAttribute('href');
  expect(manifest).toBeTruthy();
  const res = await page.request.get(`${ORIGIN}/${manifest!.replace(/^\//, '')}`);
  expect((await res.json()).name).toBe('DEM Studio');
});

test('after one visit the studio starts and inspects a checkpoint with the network off', async ({ page, context }) => {
  const foreign = recordForeignRequests(page);
  await page.goto('/');
  await waitForServiceWorker(page);
  await context.setOffline(true);
  const offline = await context.newPage();
  const foreignOffline = recordForeignRequests(offline);
  await offline.goto('/');
  await expect(offline.getByRole('heading', { name: /DEM Studio/ })).toBeVisible();
  const status = offline.getByTestId('gpu-status');
  await expect(status).toHaveAttribute('data-status', 'ready', { timeout: 60_000 });
  // A user's checkpoint, chosen through the file input, is read locally: nothing is fetched.
  const files = ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => ({
    name: f,
    mimeType: 'application/octet-stream',
    buffer: readFileSync(join(FIXTURE, f)),
  }));
  await offline.getByTestId('files-input').setInputFiles(files);
  await expect(offline.getByTestId('checkpoint-card').first()).toHaveAttribute('data-status', 'ready', { timeout: 60_000 });
  expect([...foreign, ...foreignOffline].map((r) => r.url())).toEqual([]);
});
