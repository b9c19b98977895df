// Partial sums for slerp over flattened tensors a, b (n) f32: each workgroup reduces a
// contiguous chunk of WG * PER elements to (a.b, a.a, b.b); the CPU adds the (G, 3) partials
// in float64, which keeps the angle accurate to ~1e-7 without a second pass.
// Twin: src/engine/kernels/mergeDot.ts.
override WG: u32 = 256;
const PER: u32 = 4u;

// a_off/b_off: element offsets, so rows of one packed (N, n) buffer can be paired (model_stock).
struct Params { n: u32, a_off: u32, b_off: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;          // (.., n) from a_off
@group(0) @binding(1) var<storage, read> b: array<f32>;          // (.., n) from b_off
@group(0) @binding(2) var<storage, read_write> partial: array<f32>; // (G, 3)
@group(0) @binding(3) var<uniform> params: Params;

var<workgroup> sums: array<vec3f, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let start = g * WG * PER;
  var acc = vec3f(0.0);
  for (var k = 0u; k < PER; k++) {
    let i = start + k * WG + lid;
    if (i < params.n) {
      let x = a[params.a_off + i];
      let y = b[params.b_off + i];
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
    partial[3u * g] = sums[0].x;
    partial[3u * g + 1u] = sums[0].y;
    partial[3u * g + 2u] = sums[0].z;
  }
}
