import { expect, test } from './helpers/network.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as LocalStoreModule from '../src/storage/local.ts';

/**
 * src/storage/local.ts in the real browser: the Origin Private File System keeps what the user
 * loaded across reloads, reports usage, and a full quota leaves stored files intact.
 */
type StorageModule = typeof LocalStoreModule;
/** Loaded in the page from the Vite dev server, which compiles the TypeScript on request. */
const MODULE = '/src/storage/local.ts';

const weights = readFileSync(join(import.meta.dirname, 'fixtures', 'tiny-gpt2', 'model.safetensors'));

test('stores, lists, reads back and removes files in OPFS; survives a reload', async ({ page }) => {
  await page.goto('/?nodemo');
  const bytes = [...weights];
  const result = await page.evaluate(async ({ data, url }) => {
    const { LocalStore } = (await import(/* @vite-ignore */ url)) as StorageModule;
    const store = await LocalStore.open('e2e-store');
    await store.clear();
    await store.put('checkpoints/tiny-gpt2/model.safetensors', new Blob([new Uint8Array(data)]));
    await store.putText('texts/prose.txt', 'It was a bright cold day in April.');
    return { list: await store.list(), usage: await store.usage() };
  }, { data: bytes, url: MODULE });
  expect(result.list.map((f) => [f.path, f.size])).toEqual([
    ['checkpoints/tiny-gpt2/model.safetensors', weights.byteLength],
    ['texts/prose.txt', 34],
  ]);
  expect(result.usage.stored).toBe(weights.byteLength + 34);
  expect(result.usage.quota).toBeGreaterThan(0);

  await page.reload();
  const after = await page.evaluate(async (url) => {
    const { LocalStore } = (await import(/* @vite-ignore */ url)) as StorageModule;
    const store = await LocalStore.open('e2e-store');
    const file = await store.file('checkpoints/tiny-gpt2/model.safetensors');
    const head = [...new Uint8Array(await file.slice(0, 64).arrayBuffer())];
    await store.remove('texts');
    const listed = (await store.list()).map((f) => f.path);
    await store.clear();
    return { size: file.size, head, listed, empty: (await store.list()).length };
  }, MODULE);
  expect(after.size).toBe(weights.byteLength);
  expect(after.head).toEqual([...weights.subarray(0, 64)]);
  expect(after.listed).toEqual(['checkpoints/tiny-gpt2/model.safetensors']);
  expect(after.empty).toBe(0);
});

test('a full storage quota gives StorageFullError and corrupts nothing already stored', async ({ page, context }) => {
  await page.goto('/?nodemo');
  const origin = new URL(page.url()).origin;
  await page.evaluate(async (url) => {
    const { LocalStore } = (await import(/* @vite-ignore */ url)) as StorageModule;
    const store = await LocalStore.open('e2e-full');
    await store.clear();
    await store.putText('texts/kept.txt', 'kept');
  }, MODULE);
  const cdp = await context.newCDPSession(page);
  const used = await page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: used + 64 * 1024 });
  try {
    const outcome = await page.evaluate(async (url) => {
      const { LocalStore } = (await import(/* @vite-ignore */ url)) as StorageModule;
      const store = await LocalStore.open('e2e-full');
      try {
        await store.put('checkpoints/big/model.safetensors', new Blob([new Uint8Array(4 * 1024 * 1024).fill(7)]));
        return { error: null, list: [] as string[], kept: '' };
      } catch (e) {
        const err = e as { name: string; code: string; message: string; file?: string };
        return {
          error: { name: err.name, code: err.code, message: err.message, file: err.file },
          list: (await store.list()).map((f) => f.path),
          kept: await (await store.file('texts/kept.txt')).text(),
        };
      }
    }, MODULE);
    expect(outcome.error?.name).toBe('StorageFullError');
    expect(outcome.error?.code).toBe('storage-full');
    expect(outcome.error?.message).toContain('checkpoints/big/model.safetensors');
    expect(outcome.list).toEqual(['texts/kept.txt']);
    expect(outcome.kept).toBe('kept');
  } finally {
    await cdp.send('Storage.overrideQuotaForOrigin', { origin });
  }
});
