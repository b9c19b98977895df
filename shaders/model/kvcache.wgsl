// Appends this step's keys and values to the KV cache: for row (b, t) of the fused qkv buffer
// (B, T, ld), copy the NKV*HS (= KVD) columns at k_off / v_off to cache row (b, p0 + t) of
// kc / vc (B, P, KVD).
override WG: u32 = 256;

struct Params { rows: u32, T: u32, p0: u32, P: u32, KVD: u32, ld: u32, k_off: u32, v_off: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> kc: array<f32>;
@group(0) @binding(3) var<storage, read_write> vc: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.KVD) { return; }
  let r = i / p.KVD;
  let e = i % p.KVD;
  let dst = ((r / p.T) * p.P + p.p0 + r % p.T) * p.KVD + e;
  kc[dst] = qkv[r * p.ld + p.k_off + e];
  vc[dst] = qkv[r * p.ld + p.v_off + e];
}
