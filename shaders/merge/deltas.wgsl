// One row of the packed distribution vectors: delta (N, n) f32, row `row` = decode(x) - decode(base)
// (or decode(x) when HAS_BASE is false: packed models for linear). One dispatch per model so
// every model keeps its own stored dtype. Twin: src/engine/kernels/mergeDeltas.ts.
// @include common/dtype.wgsl
// @include common/index.wgsl

override WG: u32 = 256;
override X_DT: u32 = 0u;
override BASE_DT: u32 = 0u;
override HAS_BASE: bool = true;

struct Params { n: u32, row: u32 }

@group(0) @binding(0) var<storage, read> x: array<u32>;      // (n) in X_DT
@group(0) @binding(1) var<storage, read> base: array<u32>;   // (n) in BASE_DT; any buffer when !HAS_BASE
@group(0) @binding(2) var<storage, read_write> delta: array<f32>; // (N, n)
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  var v = decode_value(x[word_index(i, X_DT)], i, X_DT);
  if (HAS_BASE) { v = v - decode_value(base[word_index(i, BASE_DT)], i, BASE_DT); }
  delta[params.row * params.n + i] = v;
}
