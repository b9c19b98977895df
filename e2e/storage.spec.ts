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

test('replacing a stored file keeps the old one whole until the new one is complete (write-new-then-swap)', async ({ page }) => {
  await page.goto('/?nodemo');
  const outcome = await page.evaluate(async (url) => {
    const { LocalStore } = (await import(/* @vite-ignore */ url)) as StorageModule;
    const store = await LocalStore.open('e2e-swap');
    await store.clear();
    const read = async (): Promise<string> => (await store.file('texts/a.txt')).text();
    const names = async (): Promise<string[]> => {
      const out: string[] = [];
      const dir = (await (await navigator.storage.getDirectory()).getDirectoryHandle('e2e-swap')).getDirectoryHandle('texts');
      for await (const [n] of (await dir as unknown as { entries(): AsyncIterable<[string, unknown]> }).entries()) out.push(n);
      return out.sort();
    };
    await store.putText('texts/a.txt', 'old');
    const proto = FileSystemFileHandle.prototype as unknown as { move?: unknown; createWritable: (o?: unknown) => Promise<FileSystemWritableFileStream> };
    const move = proto.move;
    const createWritable = proto.createWritable;
    const result: Record<string, unknown> = {};
    try {
      // 1. The rename fails: the complete new file still replaces the old one (swap on close).
      proto.move = () => Promise.reject(new DOMException('no rename here', 'NotAllowedError'));
      await store.putText('texts/a.txt', 'new');
      result.afterFailedMove = await read();
      // 2. Rename and the swap both fail: the old content stays, the error is reported.
      proto.createWritable = function (this: FileSystemFileHandle, o?: unknown) {
        if (!this.name.startsWith('.partial-')) return Promise.reject(new DOMException('disk gone', 'InvalidStateError'));
        return createWritable.call(this, o);
      };
      result.bothFail = await store.putText('texts/a.txt', 'newer').then(() => 'resolved', (e: Error) => e.name);
      result.afterBothFail = await read();
    } finally {
      proto.move = move;
      proto.createWritable = createWritable;
    }
    // 3. The new data itself fails half way: nothing changes.
    const failing = new Blob(['x']);
    Object.defineProperty(failing, 'stream', {
      value: () =>
        new ReadableStream({
          pull(c) {
            c.enqueue(new Uint8Array(1000));
            c.error(new Error('source failed'));
          },
        }),
    });
    result.sourceFails = await store.put('texts/a.txt', failing).then(() => 'resolved', (e: Error) => e.message);
    result.afterSourceFails = await read();
    // 4. A normal replacement.
    await store.putText('texts/a.txt', 'newest');
    result.final = await read();
    result.names = await names();
    await store.clear();
    return result;
  }, MODULE);
  expect(outcome).toEqual({
    afterFailedMove: 'new',
    bothFail: 'InvalidStateError',
    afterBothFail: 'new',
    sourceFails: 'source failed',
    afterSourceFails: 'new',
    final: 'newest',
    names: ['a.txt'],
  });
});
