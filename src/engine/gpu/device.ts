import { GpuUnavailableError } from '../errors.ts';

/**
 * Gets a GPUDevice from a `GPU` object: `navigator.gpu` in the page and in Workers, the `webgpu`
 * package's `create()` in Node (src/node/gpu.ts). Requests the adapter's own buffer limits
 * (WebGPU's defaults are far below what a checkpoint needs) and `shader-f16` when present.
 */
export async function requestDevice(gpu: GPU | undefined, label = 'dem'): Promise<GPUDevice> {
  if (!gpu) {
    throw new GpuUnavailableError(
      'WebGPU is not available in this browser. Use a recent Chromium-based browser (Chrome/Edge 113+) ' +
        'or enable WebGPU (chrome://flags/#enable-unsafe-webgpu); on Linux without a GPU, start Chromium with --enable-unsafe-webgpu.',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new GpuUnavailableError('WebGPU is present but no GPU adapter was found (no compatible GPU or driver).');
  }
  const wanted: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups'];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const { limits } = adapter;
  const device = await adapter.requestDevice({
    label,
    requiredFeatures,
    requiredLimits: {
      maxBufferSize: limits.maxBufferSize,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: limits.maxComputeWorkgroupSizeY,
    },
  });
  return device;
}

/** What the UI shows about the adapter. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  features: string[];
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export function summariseDevice(device: GPUDevice, info?: GPUAdapterInfo): AdapterSummary {
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    description: info?.description ?? '',
    features: [...device.features].sort(),
    maxBufferSize: device.limits.maxBufferSize,
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
  };
}
