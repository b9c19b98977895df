import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, test } from './helpers/network.ts';

/**
 * The service worker's update path (src/ui/UpdatePrompt.tsx, registerType 'prompt'): a built
 * studio is visited and its worker installed; the server then holds a second version — the
 * built index.html with a marker, and a sw.js whose precache manifest gives index.html a new
 * revision (what a rebuild with a changed page writes; one build is reused to keep this fast).
 * The worker's update check finds it, installs it in the background and leaves it waiting: the
 * prompt must say so, and Reload must put the new version in charge (the marked page served).
 */
const ROOT = join(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const MARKER = '<meta name="dem-build" content="v2">';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
};

/** The second version: index.html marked, and sw.js with index.html's precache revision changed. */
function secondVersion(): { html: Buffer; sw: Buffer } {
  const html = readFileSync(join(DIST, 'index.html'), 'utf8');
  const sw = readFileSync(join(DIST, 'sw.js'), 'utf8');
  const entry = /\{url:"index\.html",revision:"([0-9a-f]+)"\}/g;
  expect(sw.match(entry), 'sw.js precaches index.html once, with a revision').toHaveLength(1);
  expect(html).toContain('<head>');
  return {
    html: Buffer.from(html.replace('<head>', `<head>${MARKER}`)),
    sw: Buffer.from(sw.replace(entry, (_, rev: string) => `{url:"index.html",revision:"${rev}-v2"}`)),
  };
}

/** A static server over dist/ with the preview server's headers; `version = 2` serves the second version. */
async function serve(): Promise<{ origin: string; server: Server; state: { version: 1 | 2 } }> {
  const v2 = secondVersion();
  const state = { version: 1 as 1 | 2 };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(DIST, path === '/' ? 'index.html' : path));
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cache-Control': 'no-cache',
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    };
    const override = state.version === 2 ? { [join(DIST, 'index.html')]: v2.html, [join(DIST, 'sw.js')]: v2.sw }[file] : undefined;
    if (!file.startsWith(DIST) || (!override && !existsSync(file))) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, headers).end(override ?? readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, state };
}

/** Waits until the page's worker is activated and in charge of the page (a reload makes it so). */
async function controlled(page: Page): Promise<void> {
  await page.evaluate(async () => {
    const worker = (await navigator.serviceWorker.ready).active!;
    if (worker.state !== 'activated') {
      await new Promise<void>((resolve) => worker.addEventListener('statechange', () => worker.state === 'activated' && resolve()));
    }
  });
  await page.reload();
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { polling: 200 });
}

test('a new version installed in the background shows "new version — Reload", and Reload switches to it', async ({ page }) => {
  const started = Date.now();
  // The built-app project's web server builds dist/ first; build it here when run without it.
  if (!existsSync(join(DIST, 'sw.js'))) execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  const { origin, server, state } = await serve();
  try {
    await page.goto(`${origin}/?nodemo`);
    await controlled(page);
    const marker = page.locator('meta[name="dem-build"]');
    await expect(marker).toHaveCount(0);
    await expect(page.getByTestId('update-prompt')).toHaveCount(0);
    const installed = Date.now();

    state.version = 2;
    await page.evaluate(async () => {
      await (await navigator.serviceWorker.getRegistration())!.update();
    });
    const prompt = page.getByTestId('update-prompt');
    await expect(prompt).toBeVisible();
    await expect(prompt).toContainText('A new version of DEM Studio is ready.');
    await expect(prompt.getByRole('button', { name: 'Reload' })).toBeVisible();
    // Until asked, the open page keeps its version and the new worker waits.
    await expect(marker).toHaveCount(0);
    expect(await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())!.waiting?.state)).toBe('installed');

    const reloaded = page.waitForEvent('load');
    await page.getByTestId('update-reload').click();
    await reloaded;
    await expect(marker).toHaveAttribute('content', 'v2');
    await expect(page.getByTestId('update-prompt')).toHaveCount(0);
    const reg = await page.evaluate(async () => {
      const r = (await navigator.serviceWorker.getRegistration())!;
      return { waiting: r.waiting !== null, controlled: navigator.serviceWorker.controller?.state };
    });
    expect(reg).toEqual({ waiting: false, controlled: 'activated' });
    console.log(`update prompt: first visit and worker installed ${((installed - started) / 1000).toFixed(1)} s, update found to new version running ${((Date.now() - installed) / 1000).toFixed(1)} s`);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
