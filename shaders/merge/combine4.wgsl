// combine.wgsl four elements per invocation, for n % 4 == 0: the N rows are read as vec4<f32>,
// which SwiftShader (and wide GPU loads) serve several times faster than scalar reads. Each
// element goes through exactly the operations of combine.wgsl's value(), in the same order, so
// the bits are the same. Twin: src/engine/kernels/mergeCombine.ts (picks this when n % 4 == 0).
// @include common/dtype.wgsl
// @include common/index.wgsl

override WG: u32 = 256;
override BASE_DT: u32 = 0u;
override OUT_DT: u32 = 0u;
override HAS_BASE: bool = true;

struct Params { n: u32, rows: u32, alpha: f32, _pad: u32 }

@group(0) @binding(0) var<storage, read> base: array<u32>;       // (n) in BASE_DT
@group(0) @binding(1) var<storage, read> rows: array<vec4<f32>>; // (N, n/4)
@group(0) @binding(2) var<storage, read> coef: array<f32>;       // (N)
@group(0) @binding(3) var<storage, read_write> out: array<u32>;  // (n) in OUT_DT
@group(0) @binding(4) var<uniform> params: Params;

// alpha·base + s for element i, as combine.wgsl value() finishes it.
fn finish(s: f32, i: u32) -> f32 {
  let raw = decode_value(base[word_index(select(0u, i, HAS_BASE), BASE_DT)], i, BASE_DT);
  let b = select(params.alpha * raw, raw, params.alpha == 1.0);
  if (!HAS_BASE) { return s; }
  return select(b + s, b, s == 0.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat_index(gid, nwg, WG); // elements 4q .. 4q+3
  let n4 = params.n / 4u;
  if (q >= n4) { return; }
  var s = vec4<f32>(0.0);
  for (var r = 0u; r < params.rows; r++) {
    s += coef[r] * rows[r * n4 + q];
  }
  let i = 4u * q;
  let v = vec4<u32>(
    bitcast<u32>(finish(s.x, i)),
    bitcast<u32>(finish(s.y, i + 1u)),
    bitcast<u32>(finish(s.z, i + 2u)),
    bitcast<u32>(finish(s.w, i + 3u)),
  );
  if (OUT_DT == DT_F32) {
    out[i] = v.x;
    out[i + 1u] = v.y;
    out[i + 2u] = v.z;
    out[i + 3u] = v.w;
    return;
  }
  out[2u * q] = encode_half(v.x, OUT_DT) | (encode_half(v.y, OUT_DT) << 16u);
  out[2u * q + 1u] = encode_half(v.z, OUT_DT) | (encode_half(v.w, OUT_DT) << 16u);
}
