// Sparsified, sign-elected task arithmetic (mergekit's generalized task arithmetic):
// ties, dare_linear, dare_ties, breadcrumbs(_ties). Per element i of (n):
//   v_r = coef[r] * Δ_r[i] if kept(r, i) else 0     coef = weight · rescale / (Σ w when folded)
//   CONSENSUS: elect sign(sum_r v_r) (>= 0 is +), mixed = sum of agreeing v_r, divided by the
//              sum of their weights when normalize (a zero divisor counts as 1)
//   otherwise: mixed = sum_r v_r (normalisation by sum w is folded into coef on the CPU)
//   out = base + lambda * mixed, encoded to OUT_DT; mixed == 0 passes the base through.
// kept: MASK 0 all; 1 the element's key (|Δ| bits, then lower index first) lies within the
//       row's [lo, hi] keys from merge/select (ties, breadcrumbs: exactly the ranks asked for);
//       2 element_hash(seed, tensor, r, i) <= keep_r (DARE, keep probability = density).
// The dispatch may cover a chunk of a larger tensor: `offset` is its first element's index in
// the tensor (the select keys and DARE's hash use the tensor's indices).
// Entry `l1`: per row and workgroup, (Σ |Δ_r|, Σ kept |Δ_r|) partial sums over the chunk, for
// mergekit's L1-restoring rescale (the CPU adds them in float64 and folds the ratio into coef).
// Twin: src/engine/kernels/mergeSparse.ts.
// @include common/dtype.wgsl
// @include common/index.wgsl
// @include common/rng.wgsl
// @include common/rows.wgsl

override WG: u32 = 256;
override BASE_DT: u32 = 0u;
override OUT_DT: u32 = 0u;
override MASK: u32 = 0u;
override CONSENSUS: bool = false;

// group0/groups: l1's first workgroup slot for this chunk and the slots per row (all chunks).
struct Params { n: u32, rows: u32, lambda: f32, normalize: u32, seed: u32, tensor: u32, offset: u32, group0: u32, groups: u32, _p0: u32, _p1: u32, _p2: u32 }
struct Row { coef: f32, weight: f32, keep: u32, _pad: u32 }

@group(0) @binding(0) var<storage, read> base: array<u32>;          // (n) in BASE_DT
@group(0) @binding(1) var<storage, read> rows: array<u32>;          // N rows (common/rows.wgsl)
@group(0) @binding(2) var<storage, read> row_info: array<RowInfo>;  // (N)
@group(0) @binding(3) var<storage, read> rowp: array<Row>;          // (N)
@group(0) @binding(4) var<storage, read> bands: array<u32>;         // (N, 2, 4) merge/select state: query 0 = lo, 1 = hi
@group(0) @binding(5) var<storage, read_write> out: array<u32>;     // main: (n) in OUT_DT; l1: (N, G, 2) f32
@group(0) @binding(6) var<uniform> params: Params;

// Is element i (of this chunk) of row r kept? d is Δ_r[i].
fn kept(r: u32, i: u32, d: f32) -> bool {
  let g = params.offset + i;
  if (MASK == 1u) {
    let hi = bitcast<u32>(d) & 0x7FFFFFFFu;
    let lo = ~g;
    let a = 8u * r;
    let above_lo = hi > bands[a] || (hi == bands[a] && lo >= bands[a + 1u]);
    let below_hi = hi < bands[a + 4u] || (hi == bands[a + 4u] && lo <= bands[a + 5u]);
    return above_lo && below_hi;
  }
  if (MASK == 2u) {
    return element_hash(row_key(params.seed, params.tensor, r), g) <= rowp[r].keep;
  }
  return true;
}

fn contribution(r: u32, i: u32) -> f32 {
  let d = row_value(r, i);
  return select(0.0, rowp[r].coef * d, kept(r, i, d));
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
  let b = base_value(i);
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

const PER: u32 = 4u;
var<workgroup> sums: array<vec2f, WG>;

@compute @workgroup_size(WG)
fn l1(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
      @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let r = wid.z;
  let start = g * WG * PER;
  var acc = vec2f(0.0);
  for (var k = 0u; k < PER; k++) {
    let i = start + k * WG + lid;
    if (i < params.n) {
      let d = row_value(r, i);
      let a = abs(d);
      acc += vec2f(a, select(0.0, a, kept(r, i, d)));
    }
  }
  sums[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { sums[lid] += sums[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u && start < params.n) {
    let at = 2u * (r * params.groups + params.group0 + g);
    out[at] = bitcast<u32>(sums[0].x);
    out[at + 1u] = bitcast<u32>(sums[0].y);
  }
}
