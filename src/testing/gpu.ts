import { type GpuRuntime, type GpuRuntimeOptions } from '../engine/index.ts';
import { createNodeRuntime } from '../node/gpu.ts';

/**
 * The one way GPU tests get a device: a Node runtime on Dawn/SwiftShader, or a
 * loud failure — never a silent skip; CI must have WebGPU. Each test body runs inside a
 * validation/OOM error scope; buffers it made are destroyed afterwards.
 */
let shared: Promise<GpuRuntime> | undefined;

export function testRuntime(options: GpuRuntimeOptions = {}): Promise<GpuRuntime> {
  if (Object.keys(options).length > 0) return createNodeRuntime({ label: 'test', ...options });
  shared ??= createNodeRuntime({ label: 'test' }).catch((error: unknown) => {
    throw new Error(
      `No WebGPU device for GPU tests: ${String(error)}. Install Debian's chromium (SwiftShader) and run with ` +
        'LD_LIBRARY_PATH=/usr/lib/chromium (the npm test scripts set it).',
      { cause: error },
    );
  });
  return shared;
}

/** Runs `body` with the shared runtime inside error scopes; releases buffers it created. */
export async function withGpu<T>(body: (rt: GpuRuntime) => Promise<T>): Promise<T> {
  const rt = await testRuntime();
  const made: GPUBuffer[] = [];
  const create = rt.createBuffer.bind(rt);
  rt.createBuffer = (label, size, usage) => {
    const b = create(label, size, usage);
    made.push(b);
    return b;
  };
  try {
    return await rt.scoped('test', () => body(rt));
  } finally {
    rt.createBuffer = create;
    rt.release(...made);
  }
}
