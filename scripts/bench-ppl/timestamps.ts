import type { KernelTime } from './types.ts';

/** Per-kernel GPU time from WebGPU timestamp queries: shared by bench:ppl (page) and bench:ppl-gpu (Node). */

export function aggregate(entries: { kernel: string; ms: number }[]): { kernels: KernelTime[]; totalMs: number } {
  const by = new Map<string, KernelTime>();
  let totalMs = 0;
  for (const e of entries) {
    const k = by.get(e.kernel) ?? { kernel: e.kernel, count: 0, ms: 0 };
    k.count++;
    k.ms += e.ms;
    totalMs += e.ms;
    by.set(e.kernel, k);
  }
  return { kernels: [...by.values()].sort((a, b) => b.ms - a.ms), totalMs };
}

/**
 * Per-dispatch GPU timestamps for our engine: while `record` runs, every compute pass begun on
 * `rt.device` gets begin/end timestamp writes; `rt.passPerDispatch` is set meanwhile, so every
 * dispatch is one pass labelled by its pipeline and a pass is a kernel. Chromium quantises
 * timestamps (100 µs unless developer features are on), which is far below these kernels' times
 * on SwiftShader. Used by bench-ppl's
 * page and by bench-ppl-gpu in Node.
 */
export async function timestampPasses(
  rt: { device: GPUDevice; passPerDispatch: boolean },
  record: () => Promise<unknown>,
): Promise<{ kernel: string; grid: string; ms: number }[]> {
  const device = rt.device;
  const max = 2048;
  const querySet = device.createQuerySet({ label: 'bench.timestamps', type: 'timestamp', count: 2 * max });
  const passes: { kernel: string; grid: string }[] = [];
  // The encoder class's prototype, reached through an instance (Node's webgpu has no global class).
  const proto = Object.getPrototypeOf(device.createCommandEncoder({ label: 'bench.timestamps.probe' })) as GPUCommandEncoder;
  const original = proto.beginComputePass;
  proto.beginComputePass = function (this: GPUCommandEncoder, desc?: GPUComputePassDescriptor) {
    if (passes.length >= max || desc?.timestampWrites) return original.call(this, desc);
    const i = passes.length;
    const entry = { kernel: (desc?.label ?? 'pass').replace(/^[^.]*\./, '').replace(/\.main\.pass$|\.pass$/, ''), grid: '' };
    passes.push(entry);
    const pass = original.call(this, { ...desc, timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    const dispatch = pass.dispatchWorkgroups.bind(pass);
    pass.dispatchWorkgroups = (x: number, y?: number, z?: number) => {
      entry.grid = `${x}x${y ?? 1}x${z ?? 1}`;
      dispatch(x, y, z);
    };
    return pass;
  };
  // Dispatch plans then encode a pass per dispatch (one pass per forward otherwise).
  const before = rt.passPerDispatch;
  rt.passPerDispatch = true;
  try {
    await record();
  } finally {
    proto.beginComputePass = original;
    rt.passPerDispatch = before;
  }
  const n = passes.length;
  const resolve = device.createBuffer({ label: 'bench.timestamps.resolve', size: Math.max(8, 16 * n), usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const staging = device.createBuffer({ label: 'bench.timestamps.read', size: Math.max(8, 16 * n), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder({ label: 'bench.timestamps' });
  if (n > 0) {
    enc.resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, staging, 0, 16 * n);
  }
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const t = new BigUint64Array(staging.getMappedRange().slice(0));
  staging.destroy();
  resolve.destroy();
  querySet.destroy();
  return passes.map((p, i) => ({ ...p, ms: Number(t[2 * i + 1]! - t[2 * i]!) / 1e6 }));
}

