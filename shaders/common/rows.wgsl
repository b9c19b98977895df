// The merge kernels' inputs for one tensor, or one chunk of its elements: N rows packed in one
// buffer, row r starting at word row_info[r].offset, each row in its own code:
//   DT_F32, DT_F16, DT_BF16 (dtype.wgsl): elements in that float dtype, two 16-bit ones per word;
//   RC_Q8: int8, four per word (element i in byte i & 3), times one f32 scale per block of 64
//          elements, the scales from word row_info[r].scale.
// The rows hold either the models θ_r as stored (HOLDS_DELTAS false: the lossless residency) or
// distribution vectors Δ_r (compressed residency). What a kernel reads, row_value(r, i), is
// Δ_r = θ_r − θ formed here in f32 (the one subtraction every merge path shares) or, with
// WANT_RAW, the model θ_r itself (linear, slerp); from stored Δ the model is θ + Δ.
// The including kernel declares, at its own bindings:
//   rows: array<u32>, row_info: array<RowInfo>, base: array<u32> (θ, in BASE_DT).
// Twin: src/engine/kernels/mergeRows.ts.

const RC_Q8: u32 = 3u;
const Q8_BLOCK: u32 = 64u;

override HOLDS_DELTAS: bool = false;
override WANT_RAW: bool = false;
// Every row's code when they share one (the usual case: the compiler then drops the per-row
// dispatch on the code); 255 when they differ.
override ROW_CODE: u32 = 255u;

struct RowInfo { offset: u32, code: u32, scale: u32, _pad: u32 }

fn base_value(i: u32) -> f32 {
  return decode_value(base[word_index(i, BASE_DT)], i, BASE_DT);
}

// Byte i & 3 of a word as a signed integer.
fn q8_at(word: u32, i: u32) -> f32 {
  return f32(bitcast<i32>(word << (24u - 8u * (i & 3u))) >> 24u);
}

fn row_code(r: u32) -> u32 {
  if (ROW_CODE != 255u) { return ROW_CODE; }
  return row_info[r].code;
}

// Element i of row r as stored, in f32.
fn row_stored(r: u32, i: u32) -> f32 {
  let info = row_info[r];
  let code = row_code(r);
  if (code == RC_Q8) {
    return q8_at(rows[info.offset + (i >> 2u)], i) * bitcast<f32>(rows[info.scale + i / Q8_BLOCK]);
  }
  return decode_value(rows[info.offset + word_index(i, code)], i, code);
}

// Δ_r[i], or θ_r[i] with WANT_RAW.
fn row_value(r: u32, i: u32) -> f32 {
  let x = row_stored(r, i);
  if (HOLDS_DELTAS) {
    if (WANT_RAW) { return base_value(i) + x; }
    return x;
  }
  if (WANT_RAW) { return x; }
  return x - base_value(i);
}
