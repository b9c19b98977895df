import type { Bindable } from '../gpu/runtime.ts';
import type { KernelPass } from './pass.ts';

/** Twin of shaders/model/residual.wgsl: x += y over n f32 elements. */
export function residualAdd(pass: KernelPass, n: number, x: Bindable, y: Bindable): void {
  const wg = pass.rt.workgroupSize(256);
  pass.run('model/residual', { WG: wg }, [n, 0, 0, 0], [x, y], pass.rt.grid1d(n, wg));
}
