// Partial sums for slerp and model_stock over flattened tensors: a and b are two of a tensor's
// rows (row_value of common/rows.wgsl; model_stock pairs the Δ rows) or the base (index
// 0xFFFFFFFF; slerp pairs it with the other model, read raw). Each workgroup reduces a
// contiguous part of WG * PER elements to (a.b, a.a, b.b); the CPU adds the (G, 3) partials in
// float64, which keeps the angle accurate to ~1e-7 without a second pass. A tensor in chunks
// takes one dispatch per chunk, its partials at slots group0...
// Twin: src/engine/kernels/mergeDot.ts.
// @include common/dtype.wgsl
// @include common/index.wgsl
// @include common/rows.wgsl

override WG: u32 = 256;
override BASE_DT: u32 = 0u;
const PER: u32 = 4u;
const BASE_ROW: u32 = 0xFFFFFFFFu;

struct Params { n: u32, a: u32, b: u32, group0: u32 }

@group(0) @binding(0) var<storage, read> base: array<u32>;          // (n) in BASE_DT
@group(0) @binding(1) var<storage, read> rows: array<u32>;          // N rows (common/rows.wgsl)
@group(0) @binding(2) var<storage, read> row_info: array<RowInfo>;  // (N)
@group(0) @binding(3) var<storage, read_write> partial: array<f32>; // (G, 3)
@group(0) @binding(4) var<uniform> params: Params;

var<workgroup> sums: array<vec3f, WG>;

fn operand(which: u32, i: u32) -> f32 {
  if (which == BASE_ROW) { return base_value(i); }
  return row_value(which, i);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let start = g * WG * PER;
  var acc = vec3f(0.0);
  for (var k = 0u; k < PER; k++) {
    let i = start + k * WG + lid;
    if (i < params.n) {
      let x = operand(params.a, i);
      let y = operand(params.b, i);
      acc += vec3f(x * y, x * x, y * y);
    }
  }
  sums[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { sums[lid] += sums[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u && start < params.n) {
    let at = 3u * (params.group0 + g);
    partial[at] = sums[0].x;
    partial[at + 1u] = sums[0].y;
    partial[at + 2u] = sums[0].z;
  }
}
