// Storage dtypes of tensors, bit-exact, without shader-f16 (SwiftShader has none).
// Codes match DTYPE_CODE in src/engine/kernels/decode.ts. F16/BF16 tensors are read as
// array<u32>: element i lives in word i >> 1, low half first (little-endian safetensors).
const DT_F32: u32 = 0u;
const DT_F16: u32 = 1u;
const DT_BF16: u32 = 2u;

// IEEE binary16 bits (low 16 bits of h) -> f32 bits. Every f16 value, subnormals included, is a
// normal f32, so this is exact; NaN payloads move up by 13 bits.
fn f16_to_f32_bits(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1Fu;
  let m = h & 0x3FFu;
  if (e == 0x1Fu) { return sign | 0x7F800000u | (m << 13u); }
  if (e != 0u) { return sign | ((e + 112u) << 23u) | (m << 13u); }
  if (m == 0u) { return sign; }
  // Subnormal m * 2^-24: normalise on the highest set bit p (0..9).
  let p = 31u - countLeadingZeros(m);
  return sign | ((p + 103u) << 23u) | ((m << (23u - p)) & 0x7FFFFFu);
}

// bfloat16 is the top half of an f32.
fn bf16_to_f32_bits(h: u32) -> u32 {
  return (h & 0xFFFFu) << 16u;
}

// f32 bits -> binary16 bits, round to nearest, ties to even; overflow to Inf; f16 subnormals.
// NaN keeps the top 10 payload bits (so f16 -> f32 -> f16 is the identity) and is made quiet
// only when those are all zero.
fn f32_bits_to_f16(x: u32) -> u32 {
  let sign = (x >> 16u) & 0x8000u;
  let a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) {
    let m = (a >> 13u) & 0x3FFu;
    return sign | 0x7C00u | select(m, 0x200u, m == 0u);
  }
  // 65520 is the midpoint between 65504 (odd mantissa) and 2^16: ties to even give Inf.
  if (a >= 0x477FF000u) { return sign | 0x7C00u; }
  if (a >= 0x38800000u) {
    var h = (((a >> 23u) - 112u) << 10u) | ((a >> 13u) & 0x3FFu);
    let rem = a & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) { h += 1u; }
    return sign | h;
  }
  // At most 2^-25 (the midpoint between 0 and the smallest subnormal) rounds to zero.
  if (a <= 0x33000000u) { return sign; }
  // Subnormal result: the 24-bit significand shifted to units of 2^-24 (shift 14..24).
  let s = 126u - (a >> 23u);
  let sig = (a & 0x7FFFFFu) | 0x800000u;
  var h = sig >> s;
  let rem = sig & ((1u << s) - 1u);
  let half = 1u << (s - 1u);
  if (rem > half || (rem == half && (h & 1u) == 1u)) { h += 1u; }
  return sign | h;
}

// f32 bits -> bfloat16 bits, round to nearest even (the carry handles overflow to Inf and
// bf16 subnormals alike); NaN keeps its top payload bits, made quiet if they are zero.
fn f32_bits_to_bf16(x: u32) -> u32 {
  let top = x >> 16u;
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) {
    return top | select(0u, 0x40u, (top & 0x7Fu) == 0u);
  }
  return (x + 0x7FFFu + (top & 1u)) >> 16u;
}

// Element i of a tensor stored as `dt`, given the word that holds it.
fn decode_bits(word: u32, i: u32, dt: u32) -> u32 {
  if (dt == DT_F32) { return word; }
  let h = (word >> ((i & 1u) * 16u)) & 0xFFFFu;
  if (dt == DT_F16) { return f16_to_f32_bits(h); }
  return bf16_to_f32_bits(h);
}

fn decode_value(word: u32, i: u32, dt: u32) -> f32 {
  return bitcast<f32>(decode_bits(word, i, dt));
}

// Index of the word holding element i.
fn word_index(i: u32, dt: u32) -> u32 {
  return select(i >> 1u, i, dt == DT_F32);
}

// f32 bits -> the 16-bit pattern of `dt` (F16 or BF16).
fn encode_half(x: u32, dt: u32) -> u32 {
  return select(f32_bits_to_bf16(x), f32_bits_to_f16(x), dt == DT_F16);
}
