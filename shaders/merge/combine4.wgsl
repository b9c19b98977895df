// combine.wgsl four elements per invocation, for n % 4 == 0: each row's quad is one 16-byte
// load (F32: one vec4, F16/BF16: half of one, Q8: a quarter), which SwiftShader (and wide GPU
// loads) serve several times faster than scalar reads. Each element goes through exactly the
// operations of combine.wgsl's value() and common/rows.wgsl's row_value(), in the same order, so
// the bits are the same. Rows start at 16-byte boundaries (mergeRows.ts lays them out so).
// Twin: src/engine/kernels/mergeCombine.ts (picks this when n % 4 == 0).
// @include common/dtype.wgsl
// @include common/index.wgsl

override WG: u32 = 256;
override BASE_DT: u32 = 0u;
override OUT_DT: u32 = 0u;
override HAS_BASE: bool = true;
override HOLDS_DELTAS: bool = false;
override WANT_RAW: bool = false;
override ROW_CODE: u32 = 255u; // as in common/rows.wgsl

const RC_Q8: u32 = 3u;

struct Params { n: u32, rows: u32, alpha: f32, _pad: u32 }
struct RowInfo { offset: u32, code: u32, scale: u32, _pad: u32 }

@group(0) @binding(0) var<storage, read> base: array<u32>;          // (n) in BASE_DT
@group(0) @binding(1) var<storage, read> rows: array<vec4<u32>>;    // N rows (common/rows.wgsl), 16-byte aligned
@group(0) @binding(2) var<storage, read> row_info: array<RowInfo>;  // (N)
@group(0) @binding(3) var<storage, read> coef: array<f32>;          // (N)
@group(0) @binding(4) var<storage, read_write> out: array<u32>;     // (n) in OUT_DT
@group(0) @binding(5) var<uniform> params: Params;

fn base_value(i: u32) -> f32 {
  return decode_value(base[word_index(i, BASE_DT)], i, BASE_DT);
}

fn word_at(w: u32) -> u32 {
  return rows[w >> 2u][w & 3u];
}

fn q8_at(word: u32, k: u32) -> f32 {
  return f32(bitcast<i32>(word << (24u - 8u * k)) >> 24u);
}

// Elements 4q .. 4q+3 of row r as stored, in f32.
fn row_quad(r: u32, q: u32) -> vec4<f32> {
  let info = row_info[r];
  let code = select(info.code, ROW_CODE, ROW_CODE != 255u);
  if (code == DT_F32) { return bitcast<vec4<f32>>(rows[(info.offset >> 2u) + q]); }
  if (code == RC_Q8) {
    let w = word_at(info.offset + q);
    let s = bitcast<f32>(word_at(info.scale + q / 16u));
    return vec4<f32>(q8_at(w, 0u), q8_at(w, 1u), q8_at(w, 2u), q8_at(w, 3u)) * s;
  }
  let v = rows[(info.offset >> 2u) + (q >> 1u)];
  let lo = select(v.x, v.z, (q & 1u) == 1u);
  let hi = select(v.y, v.w, (q & 1u) == 1u);
  return vec4<f32>(decode_value(lo, 0u, code), decode_value(lo, 1u, code), decode_value(hi, 0u, code), decode_value(hi, 1u, code));
}

fn base_quad(i: u32) -> vec4<f32> {
  return vec4<f32>(base_value(i), base_value(i + 1u), base_value(i + 2u), base_value(i + 3u));
}

// row_value of common/rows.wgsl for a quad, given the base's quad b (decoded once for all rows).
fn row_values(r: u32, q: u32, b: vec4<f32>) -> vec4<f32> {
  let x = row_quad(r, q);
  if (HOLDS_DELTAS) {
    if (WANT_RAW) { return b + x; }
    return x;
  }
  if (WANT_RAW) { return x; }
  return x - b;
}

// alpha·base + s for element i, as combine.wgsl value() finishes it.
fn finish(s: f32, i: u32) -> f32 {
  let raw = base_value(select(0u, i, HAS_BASE));
  let b = select(params.alpha * raw, raw, params.alpha == 1.0);
  if (!HAS_BASE) { return s; }
  return select(b + s, b, s == 0.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat_index(gid, nwg, WG); // elements 4q .. 4q+3
  let n4 = params.n / 4u;
  if (q >= n4) { return; }
  var s = vec4<f32>(0.0);
  let needs_base = HOLDS_DELTAS == WANT_RAW;
  let b = select(vec4<f32>(0.0), base_quad(select(0u, 4u * q, needs_base)), needs_base);
  for (var r = 0u; r < params.rows; r++) {
    s += coef[r] * row_values(r, q, b);
  }
  let i = 4u * q;
  let v = vec4<u32>(
    bitcast<u32>(finish(s.x, i)),
    bitcast<u32>(finish(s.y, i + 1u)),
    bitcast<u32>(finish(s.z, i + 2u)),
    bitcast<u32>(finish(s.w, i + 3u)),
  );
  if (OUT_DT == DT_F32) {
    out[i] = v.x;
    out[i + 1u] = v.y;
    out[i + 2u] = v.z;
    out[i + 3u] = v.w;
    return;
  }
  out[2u * q] = encode_half(v.x, OUT_DT) | (encode_half(v.y, OUT_DT) << 16u);
  out[2u * q + 1u] = encode_half(v.z, OUT_DT) | (encode_half(v.w, OUT_DT) << 16u);
}
