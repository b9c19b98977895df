// Weighted combination of packed rows, the interactive DEM kernel: any number N of rows, one
// pass. out (n) = alpha * base + sum_r coef[r] * row_value(r, :), in f32, encoded to OUT_DT.
//   task_arithmetic: rows = the models (Δ formed in common/rows.wgsl), alpha = 1, coef = lambda * w (/ sum w)
//   linear:          rows read raw (WANT_RAW), no base, coef = w / sum w
//   slerp:           row 0 read raw, base = the base model, alpha/coef = the slerp factors
// When the weighted sum is exactly 0 the base passes through untouched (alpha * base), so
// w = 0 returns the base bit for bit, signed zeros included.
// Twin: src/engine/kernels/mergeCombine.ts.
// @include common/dtype.wgsl
// @include common/index.wgsl
// @include common/rows.wgsl

override WG: u32 = 256;
override BASE_DT: u32 = 0u;
override OUT_DT: u32 = 0u;
override HAS_BASE: bool = true;

struct Params { n: u32, rows: u32, alpha: f32, _pad: u32 }

@group(0) @binding(0) var<storage, read> base: array<u32>;          // (n) in BASE_DT
@group(0) @binding(1) var<storage, read> rows: array<u32>;          // N rows (common/rows.wgsl)
@group(0) @binding(2) var<storage, read> row_info: array<RowInfo>;  // (N)
@group(0) @binding(3) var<storage, read> coef: array<f32>;          // (N)
@group(0) @binding(4) var<storage, read_write> out: array<u32>;     // (n) in OUT_DT
@group(0) @binding(5) var<uniform> params: Params;

fn value(i: u32) -> f32 {
  var s = 0.0;
  // row_value of common/rows.wgsl with the base decoded once for all rows.
  let needs_base = HOLDS_DELTAS == WANT_RAW;
  let bv = select(0.0, base_value(select(0u, i, needs_base)), needs_base);
  for (var r = 0u; r < params.rows; r++) {
    let x = row_stored(r, i);
    var d = x;
    if (HOLDS_DELTAS && WANT_RAW) { d = bv + x; }
    if (!HOLDS_DELTAS && !WANT_RAW) { d = x - bv; }
    s += coef[r] * d;
  }
  // Reading `base` unconditionally keeps binding 0 in the auto layout for every variant.
  let raw = base_value(select(0u, i, HAS_BASE));
  // No multiply for alpha = 1: f32 subnormals would be flushed by it on some devices.
  let b = select(params.alpha * raw, raw, params.alpha == 1.0);
  if (!HAS_BASE) { return s; }
  return select(b + s, b, s == 0.0);
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
