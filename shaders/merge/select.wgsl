// Radix select of the k-th largest |x| in each row of x (N, n) f32, on the float bits: for
// non-negative floats the order of the bits (x & 0x7FFFFFFF) is the order of the values (NaN
// above Inf). Eight passes of 4-bit digits, most significant first (shift = 28, 24, ..., 0):
//   histogram: each workgroup counts, per query, the elements of its chunk (WG * PER) whose bits
//              above shift+4 equal the prefix found so far, by their digit at shift — in private
//              counters reduced through workgroup memory: no atomics, so no contention when most
//              magnitudes share a digit (they do: deltas share exponents);
//   pick:      adds the per-workgroup histograms, walks digits from 15 down to the one holding
//              the remaining rank, fixes it into the prefix and subtracts the counts above it.
// state (N, K, 2) = [prefix, remaining rank]; after pass shift = 0 the prefix is the k-th largest
// bit pattern. Rank 0 (the CPU sets prefix 0xFFFFFFFF) means "above everything" and is skipped.
// Twin: src/engine/kernels/mergeSelect.ts.
// @include common/index.wgsl

override WG: u32 = 64;
const PER: u32 = 64u;
const BINS: u32 = 16u;
const MAX_K: u32 = 2u;

// One Params per pass (shift = 28, 24, ..., 0), bound at 256-byte offsets of one buffer.
struct Params { n: u32, rows: u32, k: u32, groups: u32, shift: u32 }

// pick uses bindings 0..2 only; x comes last so both entry points share one binding order.
@group(0) @binding(0) var<storage, read_write> state: array<u32>;   // (N, K, 2)
@group(0) @binding(1) var<storage, read_write> partial: array<u32>; // (N, G, K, BINS)
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> x: array<u32>;             // (N, n) f32 bits

var<workgroup> sums: array<u32, WG * MAX_K * BINS>; // (WG, MAX_K, BINS)

// Bits above the digit being decided; none on the first pass (a left shift by 32 is not allowed).
fn high_mask() -> u32 {
  return ~(0xFFFFFFFFu >> (28u - params.shift));
}

@compute @workgroup_size(WG)
fn histogram(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let row = wid.z;
  let kk = params.k;
  var counts: array<u32, MAX_K * BINS>;
  var prefix: array<u32, MAX_K>;
  var live: array<bool, MAX_K>;
  for (var q = 0u; q < kk; q++) {
    let s = 2u * (row * kk + q);
    prefix[q] = state[s];
    live[q] = state[s + 1u] != 0u;
  }
  if (g < params.groups) {
    let start = g * WG * PER;
    for (var p = 0u; p < PER; p++) {
      let i = start + p * WG + lid;
      if (i < params.n) {
        let b = x[row * params.n + i] & 0x7FFFFFFFu;
        let digit = (b >> params.shift) & (BINS - 1u);
        for (var q = 0u; q < kk; q++) {
          if (live[q] && (b & high_mask()) == prefix[q]) { counts[q * BINS + digit] += 1u; }
        }
      }
    }
  }
  for (var e = 0u; e < MAX_K * BINS; e++) { sums[lid * MAX_K * BINS + e] = counts[e]; }
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      for (var e = 0u; e < MAX_K * BINS; e++) {
        sums[lid * MAX_K * BINS + e] += sums[(lid + stride) * MAX_K * BINS + e];
      }
    }
    workgroupBarrier();
  }
  if (g < params.groups && lid < kk * BINS) {
    partial[(row * params.groups + g) * kk * BINS + lid] = sums[lid];
  }
}

@compute @workgroup_size(WG)
fn pick(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = flat_index(gid, nwg, WG); // (row, query) pair
  if (j >= params.rows * params.k) { return; }
  let row = j / params.k;
  let q = j % params.k;
  let s = 2u * j;
  let remaining = state[s + 1u];
  if (remaining == 0u) { return; }
  var above = 0u;
  for (var d = i32(BINS) - 1i; d >= 0i; d--) {
    var c = 0u;
    for (var g = 0u; g < params.groups; g++) {
      c += partial[((row * params.groups + g) * params.k + q) * BINS + u32(d)];
    }
    if (above + c >= remaining) {
      state[s] = state[s] | (u32(d) << params.shift);
      state[s + 1u] = remaining - above;
      return;
    }
    above += c;
  }
}
