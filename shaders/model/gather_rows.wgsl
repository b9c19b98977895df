// Row gather: y[r, c] = x[idx[r], c] for r < R. x (rows, C) f32; idx (R) u32, each < rows (checked
// on the host); y (R, C) f32, a different buffer from x. Task scoring sends only the rows that
// predict continuation tokens through the LM head.
override WG: u32 = 256;

struct Params { R: u32, C: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.R * p.C) { return; }
  let r = i / p.C;
  let c = i % p.C;
  y[i] = x[idx[r] * p.C + c];
}
