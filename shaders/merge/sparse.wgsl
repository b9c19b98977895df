// Sparsified, sign-elected task arithmetic (mergekit's generalized task arithmetic):
// ties, dare_linear, dare_ties, breadcrumbs(_ties). Per element i of (n):
//   v_r = coef[r] * delta[r, i] if kept(r, i) else 0     coef = weight (/ density for DARE)
//   CONSENSUS: elect sign(sum_r v_r) (>= 0 is +), mixed = sum of agreeing v_r, divided by the
//              sum of their weights when normalize (a zero divisor counts as 1)
//   otherwise: mixed = sum_r v_r (normalisation by sum w is folded into coef on the CPU)
//   out = base + lambda * mixed, encoded to OUT_DT; mixed == 0 passes the base through.
// kept: MASK 0 all; 1 |delta| bits within [lo_r, hi_r] from merge/select (ties, breadcrumbs);
//       2 element_hash(seed, tensor, r, i) <= keep_r (DARE, keep probability = density).
// Twin: src/engine/kernels/mergeSparse.ts.
// @include common/dtype.wgsl
// @include common/index.wgsl
// @include common/rng.wgsl

override WG: u32 = 256;
override BASE_DT: u32 = 0u;
override OUT_DT: u32 = 0u;
override MASK: u32 = 0u;
override CONSENSUS: bool = false;

struct Params { n: u32, rows: u32, lambda: f32, normalize: u32, seed: u32, tensor: u32, _p0: u32, _p1: u32 }
struct Row { coef: f32, weight: f32, keep: u32, _pad: u32 }

@group(0) @binding(0) var<storage, read> base: array<u32>;   // (n) in BASE_DT
@group(0) @binding(1) var<storage, read> delta: array<f32>;  // (N, n)
@group(0) @binding(2) var<storage, read> rowp: array<Row>;   // (N)
@group(0) @binding(3) var<storage, read> bands: array<u32>;  // (N, 2, 2) merge/select state: [lo, _, hi, _]
@group(0) @binding(4) var<storage, read_write> out: array<u32>; // (n) in OUT_DT
@group(0) @binding(5) var<uniform> params: Params;

fn contribution(r: u32, i: u32) -> f32 {
  let d = delta[r * params.n + i];
  var keep = true;
  if (MASK == 1u) {
    let b = bitcast<u32>(d) & 0x7FFFFFFFu;
    keep = b >= bands[4u * r] && b <= bands[4u * r + 2u];
  } else if (MASK == 2u) {
    keep = element_hash(row_key(params.seed, params.tensor, r), i) <= rowp[r].keep;
  }
  return select(0.0, rowp[r].coef * d, keep);
}

fn value(i: u32) -> f32 {
  var s = 0.0;
  for (var r = 0u; r < params.rows; r++) { s += contribution(r, i); }
  var mixed = s;
  if (CONSENSUS) {
    let positive = s >= 0.0;
    var acc = 0.0;
    var div = 0.0;
    for (var r = 0u; r < params.rows; r++) {
      let v = contribution(r, i);
      if (v != 0.0 && (v > 0.0) == positive) {
        acc += v;
        div += rowp[r].weight;
      }
    }
    mixed = acc;
    if (params.normalize != 0u) { mixed = acc / select(div, 1.0, div == 0.0); }
  }
  let m = params.lambda * mixed;
  let b = decode_value(base[word_index(i, BASE_DT)], i, BASE_DT);
  return select(b + m, b, m == 0.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = flat_index(gid, nwg, WG);
  if (OUT_DT == DT_F32) {
    if (w < params.n) { out[w] = bitcast<u32>(value(w)); }
    return;
  }
  let i = 2u * w;
  if (i >= params.n) { return; }
  let lo = encode_half(bitcast<u32>(value(i)), OUT_DT);
  var hi = 0u;
  if (i + 1u < params.n) { hi = encode_half(bitcast<u32>(value(i + 1u)), OUT_DT); }
  out[w] = lo | (hi << 16u);
}
