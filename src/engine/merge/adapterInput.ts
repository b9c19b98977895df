import type { GpuRuntime } from '../gpu/runtime.ts';
import type { GpuView } from '../gpu/tensor.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { loraDelta } from '../kernels/loraDelta.ts';
import { floatDtypeOf } from './execute.ts';

/**
 * One merge input on the GPU: the checkpoint's stored bytes, except where a LoRA adapter changes
 * the tensor: there θ + s·B A is formed in f32 on the GPU from θ and the factors
 * (shaders/lora/delta.wgsl), so the adapter's dense weights are never read or uploaded. Both the
 * streaming and the resident merge take their inputs from here (the same bits either way).
 * The caller releases the returned view's buffer.
 */
export async function uploadInput(rt: GpuRuntime, ckpt: Checkpoint, name: string, label: string): Promise<{ view: GpuView; bytesRead: number }> {
  const target = ckpt.adapter?.targets.get(name);
  if (!target) {
    const data = await ckpt.read(name);
    return { view: { buffer: rt.upload(label, data), dtype: floatDtypeOf(ckpt.tensors.get(name)!) }, bytesRead: data.byteLength };
  }
  const binding = ckpt.adapter!;
  const baseRef = binding.base.tensors.get(name)!;
  const [theta, a, b] = await Promise.all([binding.base.read(name), binding.read(target.a), binding.read(target.b)]);
  const temps = [rt.upload(`${label}.theta`, theta), rt.upload(`${label}.lora_A`, a), rt.upload(`${label}.lora_B`, b)];
  try {
    const buffer = rt.storage(label, target.out * target.in * 4);
    loraDelta(
      rt,
      { a: { buffer: temps[1]!, dtype: target.a.dtype }, b: { buffer: temps[2]!, dtype: target.b.dtype }, rank: target.rank, out: target.out, in: target.in, scale: target.scale, transposed: target.transposed },
      { mode: 'set', base: { buffer: temps[0]!, dtype: floatDtypeOf(baseRef) }, dst: buffer },
    );
    return { view: { buffer, dtype: 'F32' }, bytesRead: theta.byteLength + a.byteLength + b.byteLength };
  } finally {
    rt.release(...temps);
  }
}
