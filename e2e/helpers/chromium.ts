/**
 * Debian's Chromium without a GPU: its chromium package ships SwiftShader's Vulkan driver, and with
 * --enable-unsafe-webgpu headless Chromium exposes a WebGPU adapter on it (architecture 'swiftshader').
 * One list for the e2e suite, the benchmarks and make-demo. The background-networking flags keep
 * Chromium from calling out (this machine has no network, and the studio must send nothing).
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
