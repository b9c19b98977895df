/**
 * Runs in the training harness page (scripts/demo/page.html, served by the Vite dev server):
 * drives the studio's training Worker (src/worker/train.worker.ts, through its client
 * src/worker/trainClient.ts) for Node scripts through Playwright. Bytes cross the page boundary as base64; progress goes to `demoProgress`, a
 * function the Node side exposes.
 */
import type { TrainSettings } from '../../src/engine/index.ts';
import { toErrorInfo } from '../../src/worker/errors.ts';
import { createTrainClient, type TrainClient } from '../../src/worker/trainClient.ts';

export interface PageTrainJob {
  name: string;
  /** path -> base64 bytes of the checkpoint folder to start from. */
  files: Record<string, string>;
  text: string;
  settings: TrainSettings;
}

export interface PageTrainResult {
  files: Record<string, string>;
  losses: number[];
  heldOut: { step: number; loss: number }[];
  tokensPerSecond: number;
  seconds: number;
  isolated: boolean;
}

declare global {
  interface Window {
    demoProgress?: (line: string) => Promise<void>;
    demoTrain: (job: PageTrainJob) => Promise<PageTrainResult>;
  }
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

let client: TrainClient | undefined;

window.demoTrain = async (job) => {
  client ??= createTrainClient();
  const t0 = performance.now();
  const files = Object.entries(job.files).map(([path, b64]) => ({ path, file: new File([fromBase64(b64) as BlobPart], path) }));
  let lastReport = 0;
  const done = await client
    .train(
      { name: job.name, files, text: job.text, settings: job.settings },
      {
        onStatus: (r) => void window.demoProgress?.(`${job.name}: ${r.stage}${r.tokens !== undefined ? ` (${r.tokens} tokens)` : ''}`),
        onProgress: (p) => {
          const now = performance.now();
          if (p.heldOutLoss !== undefined || p.step === p.totalSteps || now - lastReport > 15_000) {
            lastReport = now;
            const held = p.heldOutLoss !== undefined ? `, held-out ${p.heldOutLoss.toFixed(3)}` : '';
            void window.demoProgress?.(
              `${job.name}: step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(3)}${held}, lr ${p.lr.toExponential(2)}, ${p.tokensPerSecond.toFixed(0)} tok/s, eta ${p.etaSeconds.toFixed(0)} s`,
            );
          }
        },
      },
    )
    .catch((error: unknown) => {
      const info = toErrorInfo(error);
      throw new Error(`${job.name}: ${info.code}: ${info.message}`);
    });
  return {
    files: Object.fromEntries(done.files.map((f) => [f.path, toBase64(f.bytes)])),
    losses: done.losses,
    heldOut: done.heldOut,
    tokensPerSecond: done.tokensPerSecond,
    seconds: (performance.now() - t0) / 1000,
    isolated: crossOriginIsolated,
  };
};
