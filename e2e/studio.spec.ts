import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { chromium, type Page } from '@playwright/test';
import { expect, isForeign, test } from './helpers/network.ts';
import { readdir } from 'node:fs/promises';
import { FIXTURES, corruptCopy, expectedParameterCount, fixtureDir, fixtureFiles, readConfig } from './helpers/fixtures.ts';
import { card, openStudio, waitForAdapter } from './helpers/studio.ts';

/**
 * The studio in real Chromium on SwiftShader: the engine Worker finds a WebGPU adapter, picked
 * checkpoints are inspected in the Worker and shown as cards, and a broken file is reported by
 * name without disturbing what is already loaded.
 */
const GPT2 = fixtureDir('tiny-gpt2'); // F32, one model.safetensors
const LLAMA = fixtureDir('tiny-llama'); // BF16, sharded with an index

/** Tensors listed in a safetensors header (8-byte little-endian length, then JSON). */
async function headerTensorCount(path: string): Promise<number> {
  const bytes = await readFile(path);
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as Record<string, unknown>;
  return Object.keys(header).filter((k) => k !== '__metadata__').length;
}

async function tensorCount(dir: string): Promise<number> {
  let n = 0;
  for (const f of await fixtureFiles(dir)) if (f.endsWith('.safetensors')) n += await headerTensorCount(f);
  return n;
}

async function addFolder(page: Page, dir: string): Promise<void> {
  await page.getByTestId('folder-input').setInputFiles(dir);
}

test.describe('DEM Studio', () => {
  test('finds a WebGPU adapter in the engine Worker', async ({ page }) => {
    await openStudio(page);
    const adapter = await waitForAdapter(page);
    expect(adapter).toContain('swiftshader');
    // The header shows it; the details list the adapter's limits and features.
    await page.getByTestId('gpu-status').locator('summary').click();
    await expect(page.getByTestId('gpu-details')).toContainText('Max buffer');
  });

  test('inspects an F32 checkpoint picked as a folder', async ({ page }) => {
    const config = await readConfig(GPT2);
    const expected = expectedParameterCount(config);
    await openStudio(page);
    await addFolder(page, GPT2);

    const gpt2 = card(page, 'tiny-gpt2');
    await expect(gpt2).toHaveAttribute('data-status', 'ready');
    await expect(gpt2.getByTestId('checkpoint-params')).toHaveAttribute('data-count', String(expected));
    await expect(gpt2.getByTestId('checkpoint-arch')).toContainText(String(config.model_type));
    await expect(gpt2.getByTestId('checkpoint-dtypes')).toHaveText('F32');
    await expect(gpt2.getByTestId('checkpoint-sharded')).toHaveText('single file');
    await expect(gpt2.getByTestId('checkpoint-role')).toHaveValue('base');

    // The tensor table lists every tensor in the file's header.
    await gpt2.getByTestId('tensor-toggle').click();
    await expect(gpt2.getByTestId('tensor-toggle')).toHaveAttribute('aria-expanded', 'true');
    await expect(gpt2.getByTestId('tensor-row')).toHaveCount(await tensorCount(GPT2));
  });

  test('inspects a sharded BF16 checkpoint picked as loose files', async ({ page }) => {
    const config = await readConfig(LLAMA);
    const files = await fixtureFiles(LLAMA);
    await openStudio(page);
    await page.getByTestId('files-input').setInputFiles(files);

    const llama = card(page, 'checkpoint 1');
    await expect(llama).toHaveAttribute('data-status', 'ready');
    await expect(llama.getByTestId('checkpoint-params')).toHaveAttribute('data-count', String(expectedParameterCount(config)));
    await expect(llama.getByTestId('checkpoint-arch')).toContainText(String(config.model_type));
    await expect(llama.getByTestId('checkpoint-dtypes')).toContainText('BF16');
    const shards = files.filter((f) => f.endsWith('.safetensors')).length;
    await expect(llama.getByTestId('checkpoint-sharded')).toHaveText(`sharded, ${shards} files`);
  });

  test('picking a parent folder adds every checkpoint inside it', async ({ page }) => {
    // Checkpoint folders only: fixtures/ also holds reference outputs and texts.
    const names = (await readdir(FIXTURES, { withFileTypes: true }))
      .filter((d) => d.isDirectory() && !d.name.startsWith('.') && existsSync(join(FIXTURES, d.name, 'config.json')))
      .map((d) => d.name)
      .sort();
    // LoRA adapter folders are picked too, at any depth (the loss-curve references keep the
    // trainer's initial factors as adapters); read over the first checkpoint (tiny-gemma2, the base) they do not fit.
    const adapters = (await readdir(FIXTURES, { recursive: true })).filter((p) => basename(p) === 'adapter_config.json').map((p) => basename(dirname(p)));
    expect(adapters.length).toBeGreaterThan(0);
    await openStudio(page);
    await addFolder(page, FIXTURES);
    await expect(page.getByTestId('checkpoint-card')).toHaveCount(names.length + adapters.length);
    for (const name of adapters) await expect(card(page, name), name).toHaveAttribute('data-status', 'failed');
    for (const name of names) {
      const config = await readConfig(fixtureDir(name));
      const c = card(page, name);
      await expect(c, name).toHaveAttribute('data-status', 'ready');
      await expect(c.getByTestId('checkpoint-params'), name).toHaveAttribute('data-count', String(expectedParameterCount(config)));
    }
    // The first becomes the base, the rest fine-tunes.
    await expect(page.locator('[data-testid="checkpoint-role"] >> nth=0')).toHaveValue('base');
    await expect(page.locator('[data-testid="checkpoint-role"]').filter({ has: page.locator('option:checked[value="base"]') })).toHaveCount(1);
  });

  test('a corrupt safetensors file is reported by name while loaded cards stay', async ({ page }) => {
    const weights = (await fixtureFiles(GPT2)).map((f) => basename(f)).find((f) => f.endsWith('.safetensors'));
    if (!weights) throw new Error('tiny-gpt2 fixture has no .safetensors file');
    const corrupt = await corruptCopy(GPT2, weights);
    const expected = String(expectedParameterCount(await readConfig(GPT2)));

    await openStudio(page);
    await addFolder(page, GPT2);
    const gpt2 = card(page, 'tiny-gpt2');
    await expect(gpt2).toHaveAttribute('data-status', 'ready');

    await page.getByTestId('files-input').setInputFiles(corrupt.files);
    const notice = page.getByTestId('notification');
    await expect(notice).toHaveCount(1);
    await expect(notice).toHaveAttribute('data-level', 'error');
    await expect(notice.getByTestId('notification-message')).toContainText(weights);
    await expect(notice.getByTestId('notification-file')).toHaveText(weights);
    await expect(page.locator('[data-testid="checkpoint-card"][data-status="failed"]')).toContainText(weights);

    // What was loaded before is untouched.
    await expect(gpt2).toHaveAttribute('data-status', 'ready');
    await expect(gpt2.getByTestId('checkpoint-params')).toHaveAttribute('data-count', expected);

    await page.screenshot({ path: join('test-results', 'studio-error.png') });
    await notice.getByTestId('notification-dismiss').click();
    await expect(notice).toHaveCount(0);
    await expect(gpt2).toHaveAttribute('data-status', 'ready');
  });

  test('works from the keyboard', async ({ page }) => {
    await openStudio(page);
    await waitForAdapter(page);
    await addFolder(page, GPT2);
    const gpt2 = card(page, 'tiny-gpt2');
    await expect(gpt2).toHaveAttribute('data-status', 'ready');
    // Tab order: the Learn entry in the header, GPU status, folder picker, opening in place, files
    // picker, then the card's controls.
    const focused = async (): Promise<string | null> => page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.tagName ?? null);
    const order: (string | null)[] = [];
    for (let i = 0; i < 8; i += 1) {
      await page.keyboard.press('Tab');
      order.push(await focused());
    }
    expect(order).toEqual(['learn-entry', 'SUMMARY', 'folder-input', 'open-in-place', 'files-input', 'checkpoint-role', 'checkpoint-remove', 'tensor-toggle']);
    await page.keyboard.press('Enter');
    await expect(gpt2.getByTestId('tensor-toggle')).toHaveAttribute('aria-expanded', 'true');
    await expect(gpt2.getByTestId('tensor-table')).toBeVisible();
  });

  test('adds a checkpoint folder dropped onto the page', async ({ page }) => {
    await openStudio(page);
    const names = (await fixtureFiles(GPT2)).map((f) => basename(f));
    // A synthetic drop: the files come from the dev server (it serves the repo root).
    await page.evaluate(async (files) => {
      const transfer = new DataTransfer();
      for (const name of files) {
        const blob = await (await fetch(`/e2e/fixtures/tiny-gpt2/${name}`)).blob();
        transfer.items.add(new File([blob], name));
      }
      window.dispatchEvent(new DragEvent('dragenter', { dataTransfer: transfer, cancelable: true }));
      window.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, cancelable: true }));
    }, names);
    const dropped = page.getByTestId('checkpoint-card');
    await expect(dropped).toHaveCount(1);
    await expect(dropped).toHaveAttribute('data-status', 'ready');
    await expect(dropped.getByTestId('checkpoint-params')).toHaveAttribute('data-count', String(expectedParameterCount(await readConfig(GPT2))));
  });

  test('without WebGPU the header says so and inspecting still works', async ({ browserName: _ }, testInfo) => {
    // A second browser without --enable-unsafe-webgpu: headless Chromium then has no adapter.
    const launch = testInfo.project.use.launchOptions ?? {};
    const browser = await chromium.launch({ ...launch, args: (launch.args ?? []).filter((a) => a !== '--enable-unsafe-webgpu') });
    try {
      const page = await browser.newPage({ baseURL: testInfo.project.use.baseURL, viewport: { width: 1280, height: 800 } });
      const foreign: string[] = [];
      page.context().on('request', (r) => void (isForeign(r.url()) && foreign.push(r.url())));
      await openStudio(page);
      const status = page.getByTestId('gpu-status');
      await expect(status).toHaveAttribute('data-status', 'unavailable');
      await expect(status).toContainText('WebGPU unavailable');
      await expect(page.getByTestId('gpu-banner')).toContainText(/WebGPU|adapter/);
      await expect(page.getByTestId('gpu-retry')).toBeVisible();
      await addFolder(page, GPT2);
      await expect(card(page, 'tiny-gpt2')).toHaveAttribute('data-status', 'ready');
      await page.screenshot({ path: join('test-results', 'studio-no-webgpu.png') });
      expect(foreign, 'requests to origins other than the local server').toEqual([]);
    } finally {
      await browser.close();
    }
  });

  test('screenshot for the README', async ({ page }) => {
    await openStudio(page);
    await waitForAdapter(page);
    await addFolder(page, GPT2);
    await expect(card(page, 'tiny-gpt2')).toHaveAttribute('data-status', 'ready');
    await addFolder(page, LLAMA);
    await expect(card(page, 'tiny-llama')).toHaveAttribute('data-status', 'ready');
    await card(page, 'tiny-gpt2').getByTestId('tensor-toggle').click();
    await page.screenshot({ path: join('test-results', 'studio.png') });
    if (process.env.UPDATE_SCREENSHOTS) await page.screenshot({ path: join('docs', 'screenshots', 'studio.png') });
  });
});
