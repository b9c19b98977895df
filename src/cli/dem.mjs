#!/usr/bin/env node
// `dem` launcher: makes Dawn find a Vulkan driver, then runs the TypeScript CLI through tsx.
// Without a system Vulkan loader we use the one (and SwiftShader) shipped in Debian's chromium;
// the dynamic loader reads LD_LIBRARY_PATH only at process start, hence the re-exec.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CHROMIUM_LIB = '/usr/lib/chromium';
const systemVulkan = ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib/aarch64-linux-gnu/libvulkan.so.1', '/usr/lib/libvulkan.so.1'].some(existsSync);
const ldPath = process.env.LD_LIBRARY_PATH ?? '';

if (process.platform === 'linux' && !systemVulkan && existsSync(`${CHROMIUM_LIB}/libvulkan.so.1`) && !ldPath.split(':').includes(CHROMIUM_LIB)) {
  const env = { ...process.env, LD_LIBRARY_PATH: ldPath ? `${CHROMIUM_LIB}:${ldPath}` : CHROMIUM_LIB };
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { env, stdio: 'inherit' });
  process.exit(child.status ?? (child.signal ? 128 : 1));
}

const { register } = await import('tsx/esm/api');
register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
