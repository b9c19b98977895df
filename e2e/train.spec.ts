import type { Page } from '@playwright/test';
import { expect, test } from './helpers/network.ts';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type * as Engine from '../src/engine/index.ts';
import type { TrainReply, TrainRequest } from '../src/worker/trainProtocol.ts';

/**
 * The training Worker (src/worker/train.worker.ts) in real Chromium: onnxruntime-web's training
 * wasm from public/ort, threads under the dev server's cross-origin isolation. Fine-tunes the
 * tiny-gpt2 fixture, cancels a run, and reopens the returned checkpoint with the engine.
 */
const FIXTURE = join(import.meta.dirname, 'fixtures', 'tiny-gpt2');
const files = readdirSync(FIXTURE).map((path) => ({ path, bytes: [...readFileSync(join(FIXTURE, path))] }));
const text = readFileSync('/usr/share/common-licenses/Apache-2.0', 'utf8').slice(0, 8000);
const settings = {
  steps: 40, batchSize: 4, seqLen: 32, lr: 3e-3, warmupSteps: 4, weightDecay: 0, trainable: { kind: 'all' as const },
  heldOutFraction: 0.1, evalEvery: 10, snapshotEvery: 0, seed: 7,
};
const WORKER = '/src/worker/train.worker.ts';
const ENGINE = '/src/engine/index.ts';

interface RunOutcome {
  isolated: boolean;
  cores: number;
  replies: TrainReply[];
  seconds: number;
  reopened?: { tensors: number; layers: number; changed: number; unchanged: string[] };
}

test('fine-tunes tiny-gpt2 in the training Worker: progress, falling loss, a checkpoint that reopens', async ({ page }) => {
  const pthreads: string[] = [];
  page.on('worker', (w) => pthreads.push(w.url()));
  await page.goto('/scripts/demo/page.html');
  const out = await page.evaluate(async ({ files, text, settings, workerUrl, engineUrl }) => {
    const engine = (await import(/* @vite-ignore */ engineUrl)) as typeof Engine;
    const worker = new Worker(new URL(workerUrl, location.href), { type: 'module', name: 'train' });
    const replies: TrainReply[] = [];
    const t0 = performance.now();
    const fileEntries = files.map((f) => ({ path: f.path, file: new File([new Uint8Array(f.bytes)], f.path) }));
    const done = await new Promise<TrainReply>((resolve) => {
      worker.onmessage = (e: MessageEvent<TrainReply>) => {
        replies.push(e.data);
        if (e.data.kind === 'train-done' || e.data.kind === 'train-error') resolve(e.data);
      };
      const req: TrainRequest = { kind: 'train-start', id: 1, name: 'tiny-gpt2', files: fileEntries, text, settings };
      worker.postMessage(req);
    });
    const seconds = (performance.now() - t0) / 1000;
    const result: RunOutcome = { isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency, replies, seconds };
    if (done.kind === 'train-done') {
      // The returned folder opens like any checkpoint; every trained tensor moved off the base.
      const ft = await engine.openCheckpoint(new Map(done.files.map((f) => [f.path, engine.blobSource(new Blob([f.bytes as BlobPart]), f.path)])), 'tiny-gpt2-ft');
      const base = await engine.openCheckpoint(new Map(fileEntries.map((f) => [f.path, engine.blobSource(f.file, f.path)])), 'tiny-gpt2');
      let changed = 0;
      const unchanged: string[] = [];
      for (const name of ft.tensors.keys()) {
        const a = engine.decodeToF32(await ft.read(name), ft.tensors.get(name)!.dtype);
        const b = engine.decodeToF32(await base.read(name), base.tensors.get(name)!.dtype);
        if (a.some((v, i) => v !== b[i])) changed++;
        else unchanged.push(name);
      }
      result.reopened = { tensors: ft.tensors.size, layers: ft.spec.numLayers, changed, unchanged };
    }
    worker.terminate();
    // Drop the (transferred) bytes from what comes back to Node.
    for (const r of replies) if (r.kind === 'train-done') r.files = r.files.map((f) => ({ path: f.path, bytes: new Uint8Array(0) }));
    return result;
  }, { files, text, settings, workerUrl: WORKER, engineUrl: ENGINE });

  expect(out.isolated).toBe(true);
  const last = out.replies.at(-1)!;
  if (last.kind === 'train-error') throw new Error(`training failed: ${last.error.message}`);
  expect(last.kind).toBe('train-done');
  if (last.kind !== 'train-done') return;

  const stages = out.replies.flatMap((r) => (r.kind === 'train-status' ? [r.stage] : []));
  expect(stages).toEqual(['loading', 'tokenizing', 'building', 'training', 'writing']);
  const progress = out.replies.flatMap((r) => (r.kind === 'train-progress' ? [r.progress] : []));
  expect(progress.map((p) => p.step)).toEqual(Array.from({ length: settings.steps }, (_, i) => i + 1));
  const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
  const losses = last.losses;
  expect(losses.every(Number.isFinite)).toBe(true);
  expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.5);
  expect(last.heldOut.map((h) => h.step)).toEqual([10, 20, 30, 40]);
  expect(last.heldOut.at(-1)!.loss).toBeLessThan(last.heldOut[0]!.loss);
  expect(last.files.map((f) => f.path).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
  // Every parameter moved; only GPT-2's causal-mask buffers (not parameters) are copied as they were.
  const reopened = out.reopened!;
  expect(reopened.layers).toBe(2);
  expect(reopened.unchanged.every((n) => /\.attn\.(masked_)?bias$/.test(n))).toBe(true);
  expect(reopened.changed).toBe(reopened.tensors - reopened.unchanged.length);
  expect(reopened.changed).toBeGreaterThanOrEqual(2 + 2 * 12 + 2);

  // onnxruntime-web starts its wasm threads as module Workers running its .mjs.
  const ortThreads = pthreads.filter((u) => u.includes('/ort/')).length;
  console.log(
    `training Worker: crossOriginIsolated ${out.isolated}, ${out.cores} cores, ${ortThreads} ORT thread Worker(s); ` +
      `loss ${mean(losses.slice(0, 5)).toFixed(3)} -> ${mean(losses.slice(-5)).toFixed(3)}, held-out ${last.heldOut[0]!.loss.toFixed(3)} -> ${last.heldOut.at(-1)!.loss.toFixed(3)}; ` +
      `${last.tokensPerSecond.toFixed(0)} tokens/s (B ${settings.batchSize} x T ${settings.seqLen}), ${out.seconds.toFixed(1)} s in all`,
  );
  expect(ortThreads).toBeGreaterThanOrEqual(out.cores > 1 ? 1 : 0);
});

/** Starts a 200-step run, sends train-cancel at step 3 and collects every reply up to the last. */
async function cancelledRun(page: Page): Promise<TrainReply[]> {
  await page.goto('/scripts/demo/page.html');
  return page.evaluate(async ({ files, text, settings, workerUrl }) => {
    const worker = new Worker(new URL(workerUrl, location.href), { type: 'module', name: 'train' });
    const replies: TrainReply[] = [];
    await new Promise<void>((resolve) => {
      worker.onmessage = (e: MessageEvent<TrainReply>) => {
        replies.push(e.data);
        if (e.data.kind === 'train-progress' && e.data.progress.step === 3) worker.postMessage({ kind: 'train-cancel', target: 5 } satisfies TrainRequest);
        if (e.data.kind === 'train-done' || e.data.kind === 'train-error') resolve();
      };
      const fileEntries = files.map((f) => ({ path: f.path, file: new File([new Uint8Array(f.bytes)], f.path) }));
      worker.postMessage({ kind: 'train-start', id: 5, name: 'tiny-gpt2', files: fileEntries, text, settings: { ...settings, steps: 200, evalEvery: 0 } } satisfies TrainRequest);
    });
    worker.terminate();
    return replies;
  }, { files, text, settings, workerUrl: WORKER });
}

test('a cancelled training run ends with a cancelled error and returns no checkpoint', async ({ page }) => {
  const replies = await cancelledRun(page);
  const last = replies.at(-1)!;
  expect(last.kind === 'train-error' && last.error.code).toBe('cancelled');
  expect(replies.some((r) => r.kind === 'train-done' || r.kind === 'train-snapshot')).toBe(false);
  expect(replies.filter((r) => r.kind === 'train-status' && r.stage === 'writing')).toHaveLength(0);
});

// fineTune yields a macrotask per step, so the Worker dispatches `train-cancel` between steps
// (onnxruntime-web settles its promises as microtasks; the Node host test cannot see this).
test('a cancelled training run stops within a few steps', async ({ page }) => {
  const replies = await cancelledRun(page);
  const steps = replies.flatMap((r) => (r.kind === 'train-progress' ? [r.progress.step] : []));
  expect(Math.max(...steps)).toBeLessThan(10);
});
