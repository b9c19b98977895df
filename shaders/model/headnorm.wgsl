// RMSNorm over column segments of a strided buffer, in place: the q_norm / k_norm of Qwen3 (each
// head's HS features: W = HS, G heads per row) and OLMo 2 (the whole projection: W = NH*HS or
// NKV*HS, G = 1), applied to the q or k block of the fused qkv buffer before RoPE.
// Segment s < rows*G is row t = s / G, group g = s % G: elements buf[t*ld + off + g*W + c], c < W,
// each becomes x * rsqrt(mean(x^2) + eps) * w[c] in f32. w (W) raw weight words. One workgroup
// per segment; each invocation writes only the elements it read.
// @include common/dtype.wgsl
override WG: u32 = 256;
override DT_W: u32 = 0u;
// @include model/reduce.wgsl

struct Params { segments: u32, W: u32, G: u32, ld: u32, off: u32, eps: f32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> buf: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let lid = lid3.x;
  let seg = wid.x + wid.y * nwg.x;
  // Uniform control flow: every invocation of a workgroup shares `seg`.
  if (seg >= p.segments) { return; }
  let base = (seg / p.G) * p.ld + p.off + (seg % p.G) * p.W;
  var s2 = 0.0;
  for (var c = lid; c < p.W; c += WG) { let v = buf[base + c]; s2 += v * v; }
  let r = inverseSqrt(wg_sum(s2, lid) / f32(p.W) + p.eps);
  for (var c = lid; c < p.W; c += WG) {
    buf[base + c] = buf[base + c] * r * decode_value(w[word_index(c, DT_W)], c, DT_W);
  }
}
