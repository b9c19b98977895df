// Rotary position embedding, Hugging Face rotate-half convention, in place.
// buf rows (B*T) with row stride ld; heads [0, nheads) of width HS start at column off (the q
// heads then the k heads of the fused qkv buffer). Row r has position p0 + r % T.
// (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) with cos/sin of pos * inv_freq[j], j < HS/2,
// read from a host-built table (P, HS/2, 2): SwiftShader's exp2/sin/cos are too coarse (~1e-4)
// to compute them here.
override WG: u32 = 256;

struct Params { rows: u32, T: u32, p0: u32, ld: u32, off: u32, nheads: u32, HS: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> buf: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<vec2f>; // (P, HS/2): (cos, sin)

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let half = p.HS / 2u;
  if (i >= p.rows * p.nheads * half) { return; }
  let j = i % half;
  let h = (i / half) % p.nheads;
  let r = i / (half * p.nheads);
  let cs = table[(p.p0 + r % p.T) * half + j];
  let a = r * p.ld + p.off + h * p.HS + j;
  let x1 = buf[a];
  let x2 = buf[a + half];
  buf[a] = x1 * cs.x - x2 * cs.y;
  buf[a + half] = x2 * cs.x + x1 * cs.y;
}
