/**
 * Headless Debian Chromium on a Vite dev server of this repo (its own port, COOP/COEP from
 * vite.config.ts, so onnxruntime-web runs multi-threaded), with the training harness page
 * loaded: Node scripts train through the very Worker the studio uses.
 */
import { chromium, type Browser, type Page } from '@playwright/test';
import { createServer, type ViteDevServer } from 'vite';
import type { PageTrainJob, PageTrainResult } from './page.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../e2e/helpers/chromium.ts';

export { CHROMIUM_ARGS };

export interface Harness {
  page: Page;
  browserVersion: string;
  isolated: boolean;
  cores: number;
  /** Workers onnxruntime-web started for its wasm threads so far. */
  ortThreadWorkers(): number;
  train(job: PageTrainJob): Promise<PageTrainResult>;
  close(): Promise<void>;
}

export async function startHarness(port: number, log: (line: string) => void): Promise<Harness> {
  const root = new URL('../../', import.meta.url).pathname;
  let server: ViteDevServer | undefined;
  let browser: Browser | undefined;
  try {
    server = await createServer({ root, configFile: `${root}vite.config.ts`, logLevel: 'warn', server: { port, strictPort: true, hmr: false } });
    await server.listen();
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    const page = await browser.newPage();
    const workers: string[] = [];
    page.on('worker', (w) => workers.push(w.url()));
    page.on('pageerror', (e) => log(`page error: ${e.message}`));
    await page.exposeFunction('demoProgress', (line: string) => log(line));
    await page.goto(`http://localhost:${port}/scripts/demo/page.html`);
    await page.evaluate(async (url) => {
      await import(/* @vite-ignore */ url);
    }, '/scripts/demo/page.ts');
    const env = await page.evaluate(() => ({ isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency }));
    const b = browser;
    const s = server;
    return {
      page,
      browserVersion: b.version(),
      ...env,
      ortThreadWorkers: () => workers.filter((u) => u.includes('/ort/')).length,
      train: (job) => page.evaluate((j) => window.demoTrain(j), job),
      async close() {
        await b.close();
        await s.close();
      },
    };
  } catch (e) {
    await browser?.close();
    await server?.close();
    throw e;
  }
}
