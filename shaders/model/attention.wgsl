// Causal self-attention with grouped-query heads and an online softmax (flash-attention style):
// no (T, T) score buffer. S invocations share one query row, each taking every S-th key with its
// own running max, sum and (HS) accumulator, while the workgroup streams (KT, HS) tiles of K and V
// through shared memory; at the end the S partial softmax states of a query are merged. (One
// invocation per query left a real GPU mostly idle: 12 heads x 1024 queries is 12k invocations.)
// Queries at positions [p0, p0 + T) attend to keys [0, p0 + t], or with a sliding window W > 0
// (Mistral, Phi-3) to keys (p0 + t - W, p0 + t]; kv head = h / (NH / NKV).
// Scores are q·k · scale (1/√HS, or Gemma 2's query_pre_attn_scalar^-1/2); with softcap c > 0
// (Gemma 2) they become c·tanh(score / c) before the softmax.
// Element (b, t, head, d) of q/k/v lives at b * bs + t * ld + off + head * HS + d, so q/k/v can be
// column blocks of the fused qkv buffer (B, T, (NH + 2 NKV) HS) or the KV cache (B, P, NKV HS).
// out (B, T, NH * HS). Grid: (ceil(T / (WG / S)), NH, B).
override WG: u32 = 64;
override S: u32 = 4; // invocations per query; divides WG
const HS_MAX: u32 = 256u;
const TILE: u32 = 2048u; // KT * HS <= TILE floats per K and V tile

struct Params {
  T: u32, p0: u32, NH: u32, NKV: u32,
  HS: u32, KT: u32, scale: f32, window: u32, // window 0: plain causal
  q_bs: u32, q_ld: u32, q_off: u32, softcap: f32, // softcap 0: none
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
  let QB = WG / S; // queries per workgroup
  let qi = lid / S;
  let si = lid % S;
  let t = wid.x * QB + qi;
  let live = t < p.T;
  let HS = p.HS;
  // Keys this workgroup needs: up to the position of its last (valid) query.
  let nkeys = p.p0 + min(p.T, (wid.x + 1u) * QB);
  let qpos = p.p0 + t;
  // ... and from the first key the window leaves its first query.
  let qfirst = p.p0 + wid.x * QB;
  var kstart = 0u;
  if (p.window > 0u && qfirst + 1u > p.window) { kstart = qfirst + 1u - p.window; }

  var qv: array<f32, HS_MAX>;
  var acc: array<f32, HS_MAX>;
  if (live) {
    let qa = b * p.q_bs + t * p.q_ld + p.q_off + h * HS;
    for (var d = 0u; d < HS; d++) { qv[d] = q[qa + d] * p.scale; acc[d] = 0.0; }
  }
  var m = -3.0e38;
  var l = 0.0;
  for (var k0 = kstart; k0 < nkeys; k0 += p.KT) {
    let nk = min(p.KT, nkeys - k0);
    for (var e = lid; e < nk * HS; e += WG) {
      let j = e / HS;
      let d = e % HS;
      kt[e] = k[b * p.k_bs + (k0 + j) * p.k_ld + p.k_off + kvh * HS + d];
      vt[e] = v[b * p.v_bs + (k0 + j) * p.v_ld + p.v_off + kvh * HS + d];
    }
    workgroupBarrier();
    if (live) {
      for (var j = si; j < nk; j += S) {
        if (k0 + j > qpos) { break; }
        if (p.window > 0u && k0 + j + p.window <= qpos) { continue; }
        var s = 0.0;
        for (var d = 0u; d < HS; d++) { s = fma(qv[d], kt[j * HS + d], s); }
        // tanh(15) == 1 in f32; the clamp keeps tanh lowerings away from overflow.
        if (p.softcap > 0.0) { s = p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0)); }
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
  // Merge the S partial states of each query: M = max m_s, L = Σ l_s e^(m_s − M),
  // out = Σ acc_s e^(m_s − M) / L. An invocation that saw no key has m = −3e38: its factor is 0.
  // (m, l) go through vt, the accumulators through kt: both free after the last tile.
  vt[2u * lid] = m;
  vt[2u * lid + 1u] = l;
  workgroupBarrier();
  var M = -3.0e38;
  for (var s = 0u; s < S; s++) { M = max(M, vt[2u * (qi * S + s)]); }
  var L = 0.0;
  for (var s = 0u; s < S; s++) { L += vt[2u * (qi * S + s) + 1u] * exp(vt[2u * (qi * S + s)] - M); }
  let f = exp(m - M);
  // The accumulators, DC dimensions at a time.
  let DC = TILE / WG;
  let oa = (b * p.T + t) * p.NH * HS + h * HS;
  for (var d0 = 0u; d0 < HS; d0 += DC) {
    let dn = min(DC, HS - d0);
    for (var dd = 0u; dd < dn; dd++) { kt[lid * DC + dd] = acc[d0 + dd] * f; }
    workgroupBarrier();
    if (live && si == 0u) {
      let inv = 1.0 / L;
      for (var dd = 0u; dd < dn; dd++) {
        var sum = 0.0;
        for (var s = 0u; s < S; s++) { sum += kt[(qi * S + s) * DC + dd]; }
        out[oa + d0 + dd] = sum * inv;
      }
    }
    workgroupBarrier();
  }
}
