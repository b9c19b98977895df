// Non-finite elements (±Inf, NaN) of a tensor in its stored float dtype, read as array<u32> words
// (shaders/common/dtype.wgsl packing: F16/BF16 element i in word i >> 1, low half first). The test
// is on the bits, an exponent field of all ones, so no float comparison a compiler may assume
// finite is involved. Each invocation reads one word; hits are rare, so the atomics cost nothing
// on a healthy tensor. stats[2 slot] counts the hits, stats[2 slot + 1] keeps the smallest index
// (the host starts them at 0 and 0xFFFFFFFF).
// Twin: src/engine/kernels/nonFinite.ts.
// @include common/index.wgsl
override WG: u32 = 256;
override DT: u32 = 0u; // DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2 (common/dtype.wgsl)

struct Params { n: u32, slot: u32 }

@group(0) @binding(0) var<storage, read> words: array<u32>;
@group(0) @binding(1) var<storage, read_write> stats: array<atomic<u32>>; // (S, 2)
@group(0) @binding(2) var<uniform> params: Params;

fn hit(i: u32) {
  atomicAdd(&stats[2u * params.slot], 1u);
  atomicMin(&stats[2u * params.slot + 1u], i);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = flat_index(gid, nwg, WG);
  if (DT == 0u) {
    if (w >= params.n) { return; }
    if ((words[w] & 0x7F800000u) == 0x7F800000u) { hit(w); }
    return;
  }
  // Two 16-bit elements per word: exponent mask 0x7C00 (F16, 5 bits) or 0x7F80 (BF16, 8 bits).
  let mask = select(0x7F80u, 0x7C00u, DT == 1u);
  let i = 2u * w;
  if (i >= params.n) { return; }
  let word = words[w];
  if ((word & mask) == mask) { hit(i); }
  if (i + 1u < params.n && ((word >> 16u) & mask) == mask) { hit(i + 1u); }
}
