/**
 * Copies onnxruntime-web 1.19.2's training wasm build (ort-training-wasm-simd-threaded.{mjs,wasm})
 * into public/ort/, where src/worker/train.worker.ts points `ort.env.wasm.wasmPaths`. The files
 * are build outputs (11.8 MB), ignored by git: run this before `vite` / `vite build`.
 *   npx tsx scripts/copy-ort.ts
 */
import { copyFile, mkdir, readdir } from 'node:fs/promises';

const root = new URL('..', import.meta.url).pathname;
const from = `${root}node_modules/onnxruntime-web-training/dist/`;
const to = `${root}public/ort/`;
await mkdir(to, { recursive: true });
const names = (await readdir(from)).filter((n) => /^ort-training-wasm-simd-threaded\.(mjs|wasm)$/.test(n));
if (names.length !== 2) throw new Error(`expected the training .mjs and .wasm in ${from}, found: ${names.join(', ') || 'none'} (npm ci?)`);
for (const n of names) await copyFile(from + n, to + n);
console.log(`copied ${names.join(', ')} to public/ort/`);
