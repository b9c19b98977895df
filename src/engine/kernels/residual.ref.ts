/** Float64 reference for residual.wgsl: x + y. */
export function residualAddRef(x: Float64Array, y: Float64Array): Float64Array {
  return x.map((v, i) => v + y[i]!);
}
