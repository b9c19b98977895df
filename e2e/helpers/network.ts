import { test as base, expect } from '@playwright/test';

/**
 * The studio talks to no origin but the one serving it. Every spec imports `test` from here:
 * the fixture records each request of the test's browser context (pages, workers, service
 * workers) and fails the test if one went to another origin. data:, blob: and the local
 * servers (dev 5173, preview 4173, any localhost port) are the page's own.
 */
const LOCAL = /^(data:|blob:|about:|chrome-extension:|https?:\/\/(localhost|127\.0\.0\.1)(:\d+)?\/)/;

export function isForeign(url: string): boolean {
  return !LOCAL.test(url);
}

export const test = base.extend<{ foreignRequests: string[] }>({
  foreignRequests: [
    async ({ context }, use) => {
      const foreign: string[] = [];
      const record = (url: string): void => {
        if (isForeign(url)) foreign.push(url);
      };
      context.on('request', (r) => record(r.url()));
      // Requests of browsers launched by the spec itself are checked by the spec.
      await use(foreign);
      expect(foreign, 'requests to origins other than the local server').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
