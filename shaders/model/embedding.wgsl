// Token embedding gather (+ GPT-2 learned positions): out[r, c] = wte[ids[r], c] + wpe[p0 + r % T, c],
// or SCALE · wte[ids[r], c] (Gemma's √C, in f32 as transformers multiplies it).
// ids (B*T) u32, validated < V on the host; wte (V, C), wpe (P, C) raw weight words; out (B*T, C).
// @include common/dtype.wgsl
override WG: u32 = 256;
override DT_E: u32 = 0u;
override DT_P: u32 = 0u;
override LEARNED: bool = false;
override SCALE: f32 = 1.0;

struct Params { rows: u32, C: u32, T: u32, p0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> wte: array<u32>;
@group(0) @binding(3) var<storage, read> wpe: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.C) { return; }
  let r = i / p.C;
  let c = i % p.C;
  let e = ids[r] * p.C + c;
  var v = decode_value(wte[word_index(e, DT_E)], e, DT_E);
  if (SCALE != 1.0) { v = v * SCALE; }
  if (LEARNED) {
    let q = (p.p0 + r % p.T) * p.C + c;
    v = v + decode_value(wpe[word_index(q, DT_P)], q, DT_P);
  }
  out[i] = v;
}
