import { describe, expect, it } from 'vitest';
import { GpuRuntime } from './runtime.ts';
import { testRuntime } from '../../testing/gpu.ts';
import { GpuOutOfMemoryError, GpuValidationError } from '../errors.ts';

const sources = {
  'test/scale': `
// @include test/common
override WG: u32 = 64;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < arrayLength(&y)) { y[i] = twice(x[i]); }
}`,
  'test/common': 'fn twice(v: f32) -> f32 { return 2.0 * v; }',
};

describe('GpuRuntime', () => {
  it('runs a shader with an include and reads back the result', async () => {
    const rt = new GpuRuntime((await testRuntime({ label: 'own-device' })).device, sources);
    const n = 1000;
    const x = Float32Array.from({ length: n }, () => Math.random() - 0.5);
    const xb = rt.upload('x', x);
    const yb = rt.storage('y', n * 4);
    const wg = rt.workgroupSize(64);
    await rt.scoped('scale', () => rt.dispatch(rt.pipeline('test/scale', { WG: wg }), [xb, yb], rt.grid1d(n, wg)));
    const y = await rt.readF32(yb);
    for (let i = 0; i < n; i++) expect(y[i]).toBe(2 * x[i]!);
    expect(rt.memory.live).toBe(2 * n * 4);
    rt.release(xb, yb);
    expect(rt.memory.live).toBe(0);
  });

  it('enforces the memory budget with a typed error', async () => {
    const rt = new GpuRuntime((await testRuntime({ label: 'budget' })).device, sources, { memoryBudget: 1024 });
    rt.storage('a', 1000);
    expect(() => rt.storage('b', 100)).toThrow(GpuOutOfMemoryError);
    rt.destroy();
  });

  it('turns validation errors into GpuValidationError', async () => {
    const rt = new GpuRuntime((await testRuntime({ label: 'own-device' })).device, sources);
    const a = rt.storage('a', 16);
    // One binding where the layout expects two: a validation error, caught by the scope.
    await expect(rt.scoped('bad dispatch', () => rt.dispatch(rt.pipeline('test/scale', { WG: 64 }), [a], [1]))).rejects.toBeInstanceOf(
      GpuValidationError,
    );
    rt.destroy();
  });

  it('reports device loss as a typed error', async () => {
    const rt = new GpuRuntime((await testRuntime({ label: 'own-device' })).device, sources);
    rt.device.destroy();
    const lost = await rt.lost;
    expect(lost.code).toBe('gpu-device-lost');
    expect(() => rt.storage('x', 4)).toThrow(/device lost/);
  });
});
