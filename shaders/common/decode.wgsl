// F16/BF16 <-> F32 conversion of whole tensors. Twin: src/engine/kernels/decode.ts.
// decode: src (n) in DT -> dst (n) f32. encode: src (n) f32 -> dst (n) in DT, one word (two
// elements) per invocation so no two invocations write the same word. Both hold f32 as bits
// so NaN payloads and subnormals pass untouched.
// @include common/dtype.wgsl
// @include common/index.wgsl

override WG: u32 = 256;
override DT: u32 = 1u;

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn decode(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  dst[i] = decode_bits(src[word_index(i, DT)], i, DT);
}

@compute @workgroup_size(WG)
fn encode(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = flat_index(gid, nwg, WG);
  let i = 2u * w;
  if (i >= params.n) { return; }
  let lo = encode_half(src[i], DT);
  var hi = 0u;
  if (i + 1u < params.n) { hi = encode_half(src[i + 1u], DT); }
  dst[w] = lo | (hi << 16u);
}
