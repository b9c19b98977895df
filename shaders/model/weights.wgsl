// Weight decode for the model kernels: checkpoint tensors sit on the GPU as their raw stored
// bytes in array<u32> (F32: 1 element per word; F16/BF16: 2 per word, little-endian, element i
// in the low half when i is even). No shader-f16 on SwiftShader, so halves are decoded by hand.
// Dtype codes (match src/engine/kernels/dtype.ts): 0 = F32, 1 = F16, 2 = BF16.

// Word holding element i for dtype dt.
fn w_word(i: u32, dt: u32) -> u32 {
  return select(i >> 1u, i, dt == 0u);
}

// Exact IEEE half -> f32 (subnormals, inf and NaN kept).
fn f16_bits_to_f32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) {
    // Subnormal: m * 2^-24, exact in f32.
    let v = f32(m) * 5.9604644775390625e-8;
    return select(v, -v, sign != 0u);
  }
  if (e == 31u) {
    return bitcast<f32>(sign | 0x7f800000u | (m << 13u));
  }
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}

// Element i decoded from `word` (the word w_word(i, dt) points at).
fn w_decode(word: u32, i: u32, dt: u32) -> f32 {
  if (dt == 0u) {
    return bitcast<f32>(word);
  }
  let h = select(word & 0xffffu, word >> 16u, (i & 1u) == 1u);
  if (dt == 1u) {
    return f16_bits_to_f32(h);
  }
  return bitcast<f32>(h << 16u);
}
