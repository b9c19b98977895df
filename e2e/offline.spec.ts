import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page, Request } from '@playwright/test';
import { fixtureDir } from './helpers/fixtures.ts';
import { expect, isForeign, test } from './helpers/network.ts';
import { storageSettled } from './helpers/storage.ts';
import { card, settledPpl } from './helpers/studio.ts';

/**
 * The built studio (vite build + preview): installable, works with the network off after one
 * visit, and talks to no origin but its own.
 */
const DEMO_MANIFEST = join(import.meta.dirname, '..', 'public', 'demo', 'manifest.json');

function recordForeignRequests(page: Page): Request[] {
  const foreign: Request[] = [];
  page.on('request', (r) => {
    if (isForeign(r.url())) foreign.push(r);
  });
  return foreign;
}

async function waitForServiceWorker(page: Page): Promise<void> {
  // page.evaluate awaits the promise (waitForFunction would take a pending promise as truthy).
  await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    const worker = reg.active!;
    if (worker.state !== 'activated') {
      await new Promise<void>((resolve) => worker.addEventListener('statechange', () => worker.state === 'activated' && resolve()));
    }
  });
  // Activated is not yet in charge of this client: a reload makes the worker control the page,
  // which proves it answers navigations before the network goes away.
  await page.reload();
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { polling: 200, timeout: 60_000 });
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
  const res = await page.request.get(`${new URL(page.url()).origin}/${manifest!.replace(/^\//, '')}`);
  expect((await res.json()).name).toBe('DEM Studio');
});

test('after one visit, with the network off: the studio starts, a workspace evaluates and a merge exports as a zip', async ({ page, context }) => {
  // The demo's six half-precision checkpoints are read twice offline (studio, then Learn mode).
  test.setTimeout(360_000);
  const started = Date.now();
  const foreign = recordForeignRequests(page);
  // The demo workspace when this build has one (precached by the service worker), else the
  // fixture checkpoints added on the first visit and restored from OPFS.
  const demo = existsSync(DEMO_MANIFEST)
    ? (JSON.parse(readFileSync(DEMO_MANIFEST, 'utf8')) as { checkpoints: { name: string; role: string }[] }).checkpoints.filter((c) => c.role !== 'mixing')
    : null;
  await page.goto('/?nodemo');
  await waitForServiceWorker(page);
  let names: string[];
  if (demo) {
    names = demo.map((c) => c.name);
  } else {
    names = ['tiny-gpt2', 'tiny-gpt2-ft-a'];
    await expect(page.getByTestId('gpu-status')).toHaveAttribute('data-status', 'ready');
    for (const name of names) {
      await page.getByTestId('folder-input').setInputFiles(fixtureDir(name));
      await expect(card(page, name)).toHaveAttribute('data-status', 'ready');
    }
    await page.getByTestId('validation-name').fill('prose');
    await page.getByTestId('validation-text').fill('The lighthouse keeper kept a ledger of every ship that passed the point.');
    await page.getByTestId('validation-add').click();
    await storageSettled(page);
  }
  const online = Date.now();

  await context.setOffline(true);
  const offline = await context.newPage();
  const foreignOffline = recordForeignRequests(offline);
  const failed: string[] = [];
  offline.on('requestfailed', (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
  // With no saved workspace the studio opens the demo (fetched from the precache).
  await offline.goto(demo ? '/' : '/?nodemo');
  await expect(offline.getByRole('heading', { name: /DEM Studio/ })).toBeVisible();
  await expect(offline.getByTestId('gpu-status')).toHaveAttribute('data-status', 'ready', { timeout: 60_000 });
  for (const name of names) await expect(card(offline, name)).toHaveAttribute('data-status', 'ready');
  if (demo) {
    // The demo's own texts take minutes to measure on SwiftShader: its checkpoints are measured
    // on one short text instead (the demo's files still all came from the precache).
    const sets = offline.getByTestId('validation-set');
    await expect(sets).not.toHaveCount(0);
    for (const name of await sets.evaluateAll((els) => els.map((e) => e.getAttribute('data-name') ?? ''))) {
      await offline.getByRole('button', { name: `Remove validation set ${name}` }).click();
    }
    await offline.getByTestId('validation-name').fill('short');
    await offline.getByTestId('validation-text').fill('The lighthouse keeper kept a ledger of every ship that passed the point.');
    await offline.getByTestId('validation-add').click();
  }
  const ppl = await settledPpl(offline);
  expect(Object.keys(ppl).length).toBeGreaterThan(0);
  for (const v of Object.values(ppl)) expect(v).toBeGreaterThan(1);
  const evaluated = Date.now();

  const download = offline.waitForEvent('download');
  await offline.getByTestId('export-zip').click();
  const zip = join(await mkdtemp(join(tmpdir(), 'dem-offline-')), 'merged.zip');
  await (await download).saveAs(zip);
  await expect(offline.getByTestId('export-panel')).toHaveAttribute('data-status', 'done');
  const listed = execFileSync('unzip', ['-Z1', zip], { encoding: 'utf8' }).split('\n');
  expect(listed).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'dem-recipe.json']));
  if (demo) {
    // Learn mode offline too: the lesson and its demo models come from the precache (the
    // lesson's measurements are the learn spec's; here, that it opens and loads).
    await offline.goto('/#/learn/delta');
    await expect(offline.locator('[data-testid="learn-step"][data-step="delta"]')).toBeVisible();
    await expect(offline.getByTestId('learn-loading')).toHaveCount(0, { timeout: 120_000 });
    await expect(offline.getByTestId('learn-control')).toBeVisible();
  }
  expect(failed).toEqual([]);
  expect([...foreign, ...foreignOffline].map((r) => r.url())).toEqual([]);
  console.log(
    `offline (${demo ? 'demo' : 'OPFS fixture'}): first visit ${((online - started) / 1000).toFixed(1)} s, ` +
      `offline start to evaluated ${((evaluated - online) / 1000).toFixed(1)} s, export ${((Date.now() - evaluated) / 1000).toFixed(1)} s`,
  );
});
