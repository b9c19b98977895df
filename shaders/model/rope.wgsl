// Rotary position embedding, Hugging Face rotate-half convention, in place.
// buf rows (B*T) with row stride ld; heads [0, nheads) of width HS start at column off (the q
// heads then the k heads of the fused qkv buffer). Row r has position p0 + r % T.
// inv_freq[j] = theta^(-2j/HS), j < HS/2; (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin).
override WG: u32 = 256;

struct Params { rows: u32, T: u32, p0: u32, ld: u32, off: u32, nheads: u32, HS: u32, log2_theta: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> buf: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let half = p.HS / 2u;
  if (i >= p.rows * p.nheads * half) { return; }
  let j = i % half;
  let h = (i / half) % p.nheads;
  let r = i / (half * p.nheads);
  let pos = f32(p.p0 + r % p.T);
  let inv_freq = exp2(-f32(2u * j) / f32(p.HS) * p.log2_theta);
  let ang = pos * inv_freq;
  let c = cos(ang);
  let s = sin(ang);
  let a = r * p.ld + p.off + h * p.HS + j;
  let x1 = buf[a];
  let x2 = buf[a + half];
  buf[a] = x1 * c - x2 * s;
  buf[a + half] = x2 * c + x1 * s;
}
