import type { Bindable } from '../gpu/runtime.ts';
import type { KernelPass } from './pass.ts';

/** Twin of shaders/model/activation.wgsl (in place on n f32 elements). */
export function geluNew(pass: KernelPass, n: number, a: Bindable): void {
  const wg = pass.rt.workgroupSize(256);
  // gelu reads no `b`; the entry point's auto layout has only bindings 0 and 1.
  pass.run('model/activation', { WG: wg }, [n, 0, 0, 0], [a], pass.rt.grid1d(n, wg), 'gelu');
}

/** a = silu(a) * b: Llama's gate (a) and up (b) projections, both (rows, FF). */
export function siluMul(pass: KernelPass, n: number, a: Bindable, b: Bindable): void {
  const wg = pass.rt.workgroupSize(256);
  pass.run('model/activation', { WG: wg }, [n, 0, 0, 0], [a, b], pass.rt.grid1d(n, wg), 'silu_mul');
}

/** a = gelu(a) * b (tanh GELU): Gemma's GeGLU gate (a) and up (b) projections, both (rows, FF). */
export function geluMul(pass: KernelPass, n: number, a: Bindable, b: Bindable): void {
  const wg = pass.rt.workgroupSize(256);
  pass.run('model/activation', { WG: wg }, [n, 0, 0, 0], [a, b], pass.rt.grid1d(n, wg), 'gelu_mul');
}
