// A LoRA update formed from its factors: for element e of a (out, in) matrix — stored (in, out)
// when TRANSPOSED (GPT-2's Conv1D) — v = scale · Σ_k B[o, k] · A[k, i], with A (r, in) and B
// (out, r) in their stored dtypes, summed in f32 over k in order. MODE 0 writes
// dst[dst_offset + e] = decode(base[e]) + v (HAS_BASE; else v): the adapted weight θ + Δ, or Δ
// into a packed row. MODE 1 adds: dst[dst_offset + e] += v (the low-rank update of a merged
// tensor, the coefficient folded into scale). Twin: src/engine/kernels/loraDelta.ts.
// @include common/dtype.wgsl
// @include common/index.wgsl

override WG: u32 = 256;
override A_DT: u32 = 0u;
override B_DT: u32 = 0u;
override BASE_DT: u32 = 0u;
override HAS_BASE: bool = true;
override TRANSPOSED: bool = false;
override MODE: u32 = 0u;

struct Params { n: u32, outs: u32, ins: u32, rank: u32, dst_offset: u32, scale: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;     // (r, in) in A_DT
@group(0) @binding(2) var<storage, read> b: array<u32>;     // (out, r) in B_DT
@group(0) @binding(3) var<storage, read> base: array<u32>;  // (n) in BASE_DT; any buffer when !HAS_BASE
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat_index(gid, nwg, WG);
  if (e >= params.n) { return; }
  var o: u32;
  var i: u32;
  if (TRANSPOSED) {
    i = e / params.outs;
    o = e % params.outs;
  } else {
    o = e / params.ins;
    i = e % params.ins;
  }
  var acc = 0.0;
  for (var k = 0u; k < params.rank; k++) {
    let bi = o * params.rank + k;
    let ai = k * params.ins + i;
    acc = acc + decode_value(b[word_index(bi, B_DT)], bi, B_DT) * decode_value(a[word_index(ai, A_DT)], ai, A_DT);
  }
  var v = params.scale * acc;
  let d = params.dst_offset + e;
  if (MODE == 1u) {
    dst[d] = dst[d] + v;
    return;
  }
  if (HAS_BASE) { v = decode_value(base[word_index(e, BASE_DT)], e, BASE_DT) + v; }
  dst[d] = v;
}
