// Causal self-attention with grouped-query heads and an online softmax (flash-attention style):
// no (T, T) score buffer; each invocation owns one query row and keeps a running max, sum and
// (HS) accumulator while the workgroup streams (KT, HS) tiles of K and V through shared memory.
// Queries at positions [p0, p0 + T) attend to keys [0, p0 + t]; kv head = h / (NH / NKV).
// Element (b, t, head, d) of q/k/v lives at b * bs + t * ld + off + head * HS + d, so q/k/v can be
// column blocks of the fused qkv buffer (B, T, (NH + 2 NKV) HS) or the KV cache (B, P, NKV HS).
// out (B, T, NH * HS). Grid: (ceil(T / WG), NH, B).
override WG: u32 = 64;
const HS_MAX: u32 = 256u;
const TILE: u32 = 2048u; // KT * HS <= TILE floats per K and V tile

struct Params {
  T: u32, p0: u32, NH: u32, NKV: u32,
  HS: u32, KT: u32, scale: f32, _pad: u32,
  q_bs: u32, q_ld: u32, q_off: u32, _p1: u32,
  k_bs: u32, k_ld: u32, k_off: u32, _p2: u32,
  v_bs: u32, v_ld: u32, v_off: u32, _p3: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> kt: array<f32, TILE>;
var<workgroup> vt: array<f32, TILE>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let lid = lid3.x;
  let h = wid.y;
  let b = wid.z;
  let kvh = h / (p.NH / p.NKV);
  let t = wid.x * WG + lid;
  let live = t < p.T;
  let HS = p.HS;
  // Keys this workgroup needs: up to the position of its last (valid) query.
  let nkeys = p.p0 + min(p.T, (wid.x + 1u) * WG);
  let qpos = p.p0 + t;

  var qv: array<f32, HS_MAX>;
  var acc: array<f32, HS_MAX>;
  if (live) {
    let qa = b * p.q_bs + t * p.q_ld + p.q_off + h * HS;
    for (var d = 0u; d < HS; d++) { qv[d] = q[qa + d] * p.scale; acc[d] = 0.0; }
  }
  var m = -3.0e38;
  var l = 0.0;
  for (var k0 = 0u; k0 < nkeys; k0 += p.KT) {
    let nk = min(p.KT, nkeys - k0);
    for (var e = lid; e < nk * HS; e += WG) {
      let j = e / HS;
      let d = e % HS;
      kt[e] = k[b * p.k_bs + (k0 + j) * p.k_ld + p.k_off + kvh * HS + d];
      vt[e] = v[b * p.v_bs + (k0 + j) * p.v_ld + p.v_off + kvh * HS + d];
    }
    workgroupBarrier();
    if (live) {
      for (var j = 0u; j < nk; j++) {
        if (k0 + j > qpos) { break; }
        var s = 0.0;
        for (var d = 0u; d < HS; d++) { s = fma(qv[d], kt[j * HS + d], s); }
        let m_new = max(m, s);
        let corr = exp(m - m_new);
        let pj = exp(s - m_new);
        l = l * corr + pj;
        for (var d = 0u; d < HS; d++) { acc[d] = fma(pj, vt[j * HS + d], acc[d] * corr); }
        m = m_new;
      }
    }
    workgroupBarrier();
  }
  if (live) {
    let oa = (b * p.T + t) * p.NH * HS + h * HS;
    let inv = 1.0 / l;
    for (var d = 0u; d < HS; d++) { out[oa + d] = acc[d] * inv; }
  }
}
