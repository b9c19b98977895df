// One row of compressed distribution vectors (the approximate residency): Δ = decode(x) −
// decode(base) in f32, as common/rows.wgsl forms it, stored as
//   OUT_CODE RC_Q8 (3): per block of 64 elements one f32 scale s = max|Δ| / 127 and
//                       q = clamp(round(Δ / s), −127, 127) as int8, four per word (s = 0: q = 0);
//   OUT_CODE DT_F32/F16/BF16: Δ rounded to that dtype (round to nearest even).
// One invocation per block (Q8) or per output word (floats). Row r of the rows buffer starts at
// word `offset`, its scales at word `scale`. Twin: src/engine/kernels/mergeCompress.ts.
// @include common/dtype.wgsl
// @include common/index.wgsl

override WG: u32 = 64;
override X_DT: u32 = 0u;
override BASE_DT: u32 = 0u;
override OUT_CODE: u32 = 3u;

const RC_Q8: u32 = 3u;
const BLOCK: u32 = 64u;

struct Params { n: u32, offset: u32, scale: u32, _pad: u32 }

@group(0) @binding(0) var<storage, read> x: array<u32>;          // (n) in X_DT
@group(0) @binding(1) var<storage, read> base: array<u32>;       // (n) in BASE_DT
@group(0) @binding(2) var<storage, read_write> rows: array<u32>; // the compressed rows
@group(0) @binding(3) var<uniform> params: Params;

fn delta(i: u32) -> f32 {
  return decode_value(x[word_index(i, X_DT)], i, X_DT) - decode_value(base[word_index(i, BASE_DT)], i, BASE_DT);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = flat_index(gid, nwg, WG);
  if (OUT_CODE == RC_Q8) {
    let start = w * BLOCK;
    if (start >= params.n) { return; }
    let end = min(start + BLOCK, params.n);
    var m = 0.0;
    for (var i = start; i < end; i++) { m = max(m, abs(delta(i))); }
    let s = m / 127.0;
    rows[params.scale + w] = bitcast<u32>(s);
    for (var k = 0u; k < BLOCK / 4u; k++) {
      var word = 0u;
      for (var b = 0u; b < 4u; b++) {
        let i = start + 4u * k + b;
        var q = 0i;
        if (i < end && s > 0.0) { q = i32(clamp(round(delta(i) / s), -127.0, 127.0)); }
        word = word | ((bitcast<u32>(q) & 0xFFu) << (8u * b));
      }
      rows[params.offset + w * (BLOCK / 4u) + k] = word;
    }
    return;
  }
  if (OUT_CODE == DT_F32) {
    if (w < params.n) { rows[params.offset + w] = bitcast<u32>(delta(w)); }
    return;
  }
  let i = 2u * w;
  if (i >= params.n) { return; }
  let lo = encode_half(bitcast<u32>(delta(i)), OUT_CODE);
  var hi = 0u;
  if (i + 1u < params.n) { hi = encode_half(bitcast<u32>(delta(i + 1u)), OUT_CODE); }
  rows[params.offset + w] = lo | (hi << 16u);
}
