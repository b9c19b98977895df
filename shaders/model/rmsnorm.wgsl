// RMSNorm (Llama family), one workgroup per row: y = x * rsqrt(mean(x^2) + eps) * w, in f32 as HF does;
// PLUS_ONE (Gemma): * (1 + w).
// x, y (rows, C) f32; w (C) raw weight words.
// @include common/dtype.wgsl
override WG: u32 = 256;
override DT_W: u32 = 0u;
override PLUS_ONE: bool = false;
// @include model/reduce.wgsl

struct Params { rows: u32, C: u32, eps: f32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let lid = lid3.x;
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.C;
  var s2 = 0.0;
  for (var c = lid; c < p.C; c += WG) { let v = x[base + c]; s2 += v * v; }
  let r = inverseSqrt(wg_sum(s2, lid) / f32(p.C) + p.eps);
  for (var c = lid; c < p.C; c += WG) {
    var wv = decode_value(w[word_index(c, DT_W)], c, DT_W);
    if (PLUS_ONE) { wv = 1.0 + wv; }
    y[base + c] = x[base + c] * r * wv;
  }
}
