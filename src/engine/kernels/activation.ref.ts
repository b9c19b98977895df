/** Float64 references for activation.wgsl. */
export function geluNewRef(x: Float64Array): Float64Array {
  return x.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
}

export function siluMulRef(gate: Float64Array, up: Float64Array): Float64Array {
  return gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
}

export function geluMulRef(gate: Float64Array, up: Float64Array): Float64Array {
  return geluNewRef(gate).map((g, i) => g * up[i]!);
}
