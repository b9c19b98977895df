import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { VitePWA } from 'vite-plugin-pwa';

// Cross-origin isolation lets onnxruntime-web use threads (SharedArrayBuffer).
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/**
 * Nothing leaves the machine: the page may talk to its own origin only. 'wasm-unsafe-eval' is
 * what onnxruntime-web's wasm needs; blob: workers are how it starts its threads. Injected into
 * the built index.html only: the dev server's React refresh needs an inline script.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self' blob:",
  "connect-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
].join('; ');

function contentSecurityPolicy(): Plugin {
  return {
    name: 'dem-csp',
    apply: 'build',
    transformIndexHtml: () => [{ tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: CONTENT_SECURITY_POLICY }, injectTo: 'head-prepend' }],
  };
}

export default defineConfig({
  plugins: [
    react(),
    contentSecurityPolicy(),
    // Offline-first: Workbox precaches the app shell, the bundled WGSL, the ORT wasm and the demo
    // workspace. 'prompt' keeps a new version waiting until every studio tab is closed, so an
    // update never swaps code under an open workspace; the next visit runs it.
    VitePWA({
      registerType: 'prompt',
      injectRegister: 'script-defer',
      manifest: {
        name: 'DEM Studio',
        short_name: 'DEM Studio',
        description: 'Merge fine-tuned language models with distribution vectors and watch per-distribution perplexity live — offline, on your GPU.',
        theme_color: '#1f2937',
        background_color: '#ffffff',
        display: 'standalone',
        start_url: '.',
        icons: [{ src: 'icon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' }],
      },
      workbox: {
        globPatterns: ['**/*.{js,mjs,css,html,wasm,json,jsonl,safetensors,txt,svg,png,webmanifest}'],
        maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
        cleanupOutdatedCaches: true,
      },
    }),
  ],
  server: { headers: isolation, port: 5173, strictPort: true },
  preview: { headers: isolation, port: 4173, strictPort: true },
  worker: { format: 'es' },
  // onnxruntime-web loads its wasm/mjs from public/ort at run time; pre-bundling would break that.
  optimizeDeps: { exclude: ['onnxruntime-web-training'] },
  build: { target: 'es2022' },
});
