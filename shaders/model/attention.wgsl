// Causal self-attention, tiled as FlashAttention-2 does: no (T, T) score buffer, one workgroup per
// block of R (query, head) rows that share one KV head (grouped-query heads read the K/V tile
// once), K and V streamed through workgroup memory in (BK, HSP) tiles, an online softmax with one
// rescale per tile.
// Rows: the workgroup's flat index i = wid.x * R + r over (query t, head-in-group g), i = t * G + g,
// G = NH / NKV query heads per KV head; head h = kvh * G + g. S invocations share a row, each
// owning the head dimensions d ≡ si (mod S) of its q and output accumulator (registers: HS and BK
// are module constants set per pipeline, so every private array has a constant size and every
// loop over it a constant bound). Per tile:
//   1. K, V rows [k0, k0 + BK) → kt, vt (rows padded to HSP = S·DQ columns, the pad zero);
//   2. each invocation writes its partial dot products q_si · k_j into ps (BK, R·S);
//   3. every invocation of a row sums the S partials of every key (the same sums in the same
//      order, so the S copies of the row's max and sum agree), masks, takes the tile's max,
//      rescales its accumulator once and adds Σ_j p_j v_j over its dimensions.
// Interleaved dimensions make the S invocations of a row read consecutive words of a K/V row, and
// ps is stored key-major so the R·S invocations write consecutive words: no bank conflicts.
// Tiles past the block's last query are never loaded (causal skip); a row skips the arithmetic of
// tiles wholly outside its causal/window range.
// Queries at positions [p0, p0 + T) attend to keys [0, p0 + t], or with a sliding window W > 0
// (Mistral, Phi-3) to keys (p0 + t − W, p0 + t]. Scores are q·k · scale (1/√HS, or Gemma 2's
// query_pre_attn_scalar^−1/2); with softcap c > 0 (Gemma 2) they become c·tanh(score / c).
// Element (b, t, head, d) of q/k/v lives at b * bs + t * ld + off + head * HS + d, so q/k/v can be
// column blocks of the fused qkv buffer (B, T, (NH + 2 NKV) HS) or the KV cache (B, P, NKV HS).
// out (B, T, NH * HS). Grid: (ceil(T · G / R), NKV, B).
const HS: u32 = 64u; // head size (set per pipeline)
const BK: u32 = 16u; // keys per tile (set per pipeline from the workgroup memory limit)
const S: u32 = 4u; // invocations per row
const R: u32 = 16u; // rows per workgroup
const WG: u32 = R * S;
const DQ: u32 = (HS + S - 1u) / S; // dimensions per invocation
const HSP: u32 = DQ * S; // padded tile row

struct Params {
  T: u32, p0: u32, NH: u32, NKV: u32,
  G: u32, _p0: u32, scale: f32, window: u32, // window 0: plain causal
  q_bs: u32, q_ld: u32, q_off: u32, softcap: f32, // softcap 0: none
  k_bs: u32, k_ld: u32, k_off: u32, _p2: u32,
  v_bs: u32, v_ld: u32, v_off: u32, _p3: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> kt: array<f32, BK * HSP>;
var<workgroup> vt: array<f32, BK * HSP>;
var<workgroup> ps: array<f32, BK * WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let lid = lid3.x;
  let kvh = wid.y;
  let b = wid.z;
  let G = p.G;
  let r = lid / S;
  let si = lid % S;
  let row = wid.x * R + r;
  let t = row / G;
  let h = kvh * G + row % G;
  let live = t < p.T;
  let qpos = p.p0 + t;
  // Keys the block needs: from the window's start for its first query to its last query.
  let tfirst = (wid.x * R) / G;
  let tlast = min(p.T - 1u, (wid.x * R + R - 1u) / G);
  let nkeys = p.p0 + tlast + 1u;
  var kstart = 0u;
  if (p.window > 0u && p.p0 + tfirst + 1u > p.window) { kstart = p.p0 + tfirst + 1u - p.window; }

  var qv: array<f32, DQ>;
  var acc: array<f32, DQ>;
  let qa = b * p.q_bs + t * p.q_ld + p.q_off + h * HS;
  for (var i = 0u; i < DQ; i++) {
    let d = si + S * i;
    var x = 0.0;
    if (live && d < HS) { x = q[qa + d] * p.scale; }
    qv[i] = x;
    acc[i] = 0.0;
  }
  var m = -3.0e38;
  var l = 0.0;
  var pj: array<f32, BK>;
  let kb = b * p.k_bs + p.k_off + kvh * HS;
  let vb = b * p.v_bs + p.v_off + kvh * HS;
  for (var k0 = kstart; k0 < nkeys; k0 += BK) {
    let nk = min(BK, nkeys - k0);
    for (var e = lid; e < BK * HSP; e += WG) {
      let j = e / HSP;
      let d = e % HSP;
      var kx = 0.0;
      var vx = 0.0;
      if (j < nk && d < HS) {
        kx = k[kb + (k0 + j) * p.k_ld + d];
        vx = v[vb + (k0 + j) * p.v_ld + d];
      }
      kt[e] = kx;
      vt[e] = vx;
    }
    workgroupBarrier();
    // This row sees keys (qpos − W, qpos]; does the tile hold any of them?
    let any = live && k0 <= qpos && (p.window == 0u || k0 + nk + p.window > qpos + 1u);
    if (any) {
      for (var j = 0u; j < BK; j++) {
        var s = 0.0;
        for (var i = 0u; i < DQ; i++) { s = fma(qv[i], kt[j * HSP + si + S * i], s); }
        ps[j * WG + lid] = s;
      }
    }
    workgroupBarrier();
    if (any) {
      var mt = -3.0e38;
      for (var j = 0u; j < BK; j++) {
        let kpos = k0 + j;
        var s = 0.0;
        for (var c = 0u; c < S; c++) { s += ps[j * WG + r * S + c]; }
        // tanh(15) == 1 in f32; the clamp keeps tanh lowerings away from overflow.
        if (p.softcap > 0.0) { s = p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0)); }
        let valid = j < nk && kpos <= qpos && (p.window == 0u || kpos + p.window > qpos);
        pj[j] = select(-3.0e38, s, valid);
        mt = max(mt, pj[j]);
      }
      // The tile holds at least one valid key (any), so mt is a real score.
      let mn = max(m, mt);
      let corr = exp(m - mn);
      var lt = 0.0;
      for (var j = 0u; j < BK; j++) {
        let e = select(0.0, exp(pj[j] - mn), pj[j] > -1.0e38);
        pj[j] = e;
        lt += e;
      }
      l = l * corr + lt;
      m = mn;
      for (var i = 0u; i < DQ; i++) {
        var a = acc[i] * corr;
        for (var j = 0u; j < BK; j++) { a = fma(pj[j], vt[j * HSP + si + S * i], a); }
        acc[i] = a;
      }
    }
    workgroupBarrier();
  }
  if (live) {
    let inv = 1.0 / l;
    let oa = (b * p.T + t) * p.NH * HS + h * HS;
    for (var i = 0u; i < DQ; i++) {
      let d = si + S * i;
      if (d < HS) { out[oa + d] = acc[i] * inv; }
    }
  }
}
