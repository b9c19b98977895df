import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GpuRuntime, GpuUnavailableError, normaliseShaderSources, requestDevice, type GpuRuntimeOptions, type ShaderSources } from '../engine/index.ts';

/**
 * Node side of the GPU runtime: Dawn through the `webgpu` package. Without a system Vulkan
 * driver we fall back to SwiftShader from Debian's chromium package; libvulkan.so.1 must then be
 * on LD_LIBRARY_PATH before Node starts (src/cli/dem.mjs and the npm scripts arrange that).
 */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

function systemIcds(): boolean {
  return ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'].some((d) => existsSync(d) && readdirSync(d).length > 0);
}

// One Dawn instance per process: a collected instance takes its devices down with it.
let instance: Promise<GPU> | undefined;

export function nodeGpu(): Promise<GPU> {
  instance ??= createInstance();
  return instance;
}

async function createInstance(): Promise<GPU> {
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && !systemIcds() && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  const webgpu = await import('webgpu');
  // GPUBufferUsage, GPUMapMode, ... as in the browser.
  Object.assign(globalThis, webgpu.globals);
  return webgpu.create([]) as GPU;
}

const here = dirname(fileURLToPath(import.meta.url));
export const SHADER_DIR = join(here, '..', '..', 'shaders');

/** Every shaders/**\/*.wgsl, keyed like the browser's glob ('merge/combine'). */
export function loadShaderSources(dir = SHADER_DIR): ShaderSources {
  const raw: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.wgsl')) raw[relative(dir, path).split('\\').join('/')] = readFileSync(path, 'utf8');
    }
  };
  walk(dir);
  return normaliseShaderSources(raw);
}

/** What a Node host without a usable Vulkan driver needs, added to the engine's "no adapter" error. */
export const NODE_GPU_HINT =
  'dem runs WebGPU through Dawn on Vulkan: install your GPU\'s Vulkan driver (NVIDIA\'s, or Mesa\'s radv/anv for AMD/Intel), ' +
  `or, without a GPU, Debian's chromium package: dem then uses its software Vulkan (SwiftShader, ${SWIFTSHADER_ICD}); scripts/setup-debian.sh installs it.`;

export async function createNodeRuntime(options: GpuRuntimeOptions = {}): Promise<GpuRuntime> {
  let device: GPUDevice;
  try {
    device = await requestDevice(await nodeGpu(), options.label ?? 'dem-node');
  } catch (error) {
    if (error instanceof GpuUnavailableError) throw new GpuUnavailableError(`${error.message} ${NODE_GPU_HINT}`, { cause: error });
    throw error;
  }
  return new GpuRuntime(device, loadShaderSources(), options);
}
