import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectNoAxeViolations } from './helpers/axe.ts';
import { expect, test } from './helpers/network.ts';
import { card, openStudio, waitForAdapter } from './helpers/studio.ts';

/**
 * Accessibility stays measured: axe-core reports no violation on the empty studio and on the demo
 * workspace once its checkpoints, validation sets and task files are loaded (Learn mode's steps are
 * checked in learn.spec.ts).
 */
test('axe: no violations on the empty studio and on the demo workspace', async ({ page }) => {
  test.setTimeout(300_000);
  await openStudio(page, '/');
  await waitForAdapter(page);
  await expectNoAxeViolations(page, 'the empty studio');

  const manifest = JSON.parse(await readFile(join(import.meta.dirname, '..', 'public', 'demo', 'manifest.json'), 'utf8')) as { checkpoints: { name: string }[] };
  await openStudio(page, '/?demo');
  await waitForAdapter(page);
  for (const c of manifest.checkpoints) await expect(card(page, c.name)).toHaveAttribute('data-status', 'ready', { timeout: 120_000 });
  await expectNoAxeViolations(page, 'the demo workspace');
});
