// Radix select of the element with the k-th largest key in each row of a tensor's rows, where
// an element's key is the 64-bit (|Δ| as f32 bits, ~index): larger magnitudes first, and among
// equal magnitudes the lower index first. Keys are unique, so "keep the keys >= the k-th" keeps
// exactly k elements, ties at the threshold broken deterministically (mergekit keeps exactly
// k = int(density·n), its argsort breaking ties arbitrarily). For non-negative floats the order of
// the bits (x & 0x7FFFFFFF) is the order of the values (NaN above Inf).
// Sixteen passes of 4-bit digits, most significant first: eight over the magnitude word
// (shift = 28, 24, ..., 0), then eight over the index word:
//   histogram: each workgroup counts, per query, the elements of its part (WG * PER) whose key
//              bits above the digit equal the prefix found so far, by their digit — in private
//              counters reduced through workgroup memory: no atomics, so no contention when most
//              magnitudes share a digit (they do: deltas share exponents);
//   pick:      adds the per-workgroup histograms, walks digits from 15 down to the one holding
//              the remaining rank, fixes it into the prefix and subtracts the counts above it.
// A query is a lower bound (keep keys >= it) or an upper bound (keep keys <= it). When the
// magnitude passes leave no doubt which elements of the threshold magnitude a bound keeps — a
// lower bound whose rank takes them all, an upper bound whose rank is the first of them (the
// usual case for continuous data, where a magnitude is one element) — the index word is set to
// 0 (lower) or 0xFFFFFFFF (upper), which keeps the same elements as the exact key, and the index
// passes do nothing for that query.
// A tensor larger than one binding arrives in chunks: one histogram dispatch per chunk per pass
// (its workgroups at slots group0.. of `partial`, its elements at tensor index offset..), then
// one pick over all slots.
// state (N, K, 4) = [magnitude prefix, index prefix, remaining rank, flags: 1 done, 2 upper
// bound]. Rank 0 (the CPU writes keys 0xFFFFFFFF, 0xFFFFFFFF and done) means "above everything".
// Twin: src/engine/kernels/mergeSelect.ts.
// @include common/dtype.wgsl
// @include common/index.wgsl
// @include common/rows.wgsl

override WG: u32 = 64;
override BASE_DT: u32 = 0u;
const PER: u32 = 64u;
const BINS: u32 = 16u;
const MAX_K: u32 = 2u;

// The digit a pass decides (phase 0: magnitude word, 1: index word): one record per pass at
// 256-byte offsets of one buffer the runtime keeps, so a selection writes no per-pass data.
struct Pass { shift: u32, phase: u32 }
// One per chunk: its elements and where its workgroups' slots start; rows, k, groups are the tensor's.
struct Params { n: u32, rows: u32, k: u32, groups: u32, offset: u32, group0: u32 }

// pick uses bindings 0..3 only; the rows come last so both entry points share one binding order.
@group(0) @binding(0) var<storage, read_write> state: array<u32>;   // (N, K, 4)
@group(0) @binding(1) var<storage, read_write> partial: array<u32>; // (N, groups, K, BINS)
@group(0) @binding(2) var<uniform> pass_: Pass;
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read> base: array<u32>;          // (n) in BASE_DT
@group(0) @binding(5) var<storage, read> rows: array<u32>;          // N rows (common/rows.wgsl)
@group(0) @binding(6) var<storage, read> row_info: array<RowInfo>;  // (N)

var<workgroup> sums: array<u32, WG * MAX_K * BINS>; // (WG, MAX_K, BINS)

// Bits above the digit being decided; none on a word's first pass (a left shift by 32 is not allowed).
fn high_mask() -> u32 {
  return ~(0xFFFFFFFFu >> (28u - pass_.shift));
}

@compute @workgroup_size(WG)
fn histogram(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let row = wid.z;
  let kk = params.k;
  let chunk_groups = (params.n + WG * PER - 1u) / (WG * PER);
  var counts: array<u32, MAX_K * BINS>;
  var hi_prefix: array<u32, MAX_K>;
  var lo_prefix: array<u32, MAX_K>;
  var live: array<bool, MAX_K>;
  var busy = false;
  for (var q = 0u; q < kk; q++) {
    let s = 4u * (row * kk + q);
    hi_prefix[q] = state[s];
    lo_prefix[q] = state[s + 1u];
    live[q] = state[s + 2u] != 0u && (state[s + 3u] & 1u) == 0u;
    busy = busy || live[q];
  }
  if (g < chunk_groups && busy) {
    let start = g * WG * PER;
    for (var p = 0u; p < PER; p++) {
      let i = start + p * WG + lid;
      if (i < params.n) {
        let hi = bitcast<u32>(row_value(row, i)) & 0x7FFFFFFFu;
        let lo = ~(params.offset + i);
        for (var q = 0u; q < kk; q++) {
          if (!live[q]) { continue; }
          if (pass_.phase == 0u) {
            if ((hi & high_mask()) == hi_prefix[q]) { counts[q * BINS + ((hi >> pass_.shift) & (BINS - 1u))] += 1u; }
          } else if (hi == hi_prefix[q] && (lo & high_mask()) == lo_prefix[q]) {
            counts[q * BINS + ((lo >> pass_.shift) & (BINS - 1u))] += 1u;
          }
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
  if (g < chunk_groups && lid < kk * BINS) {
    partial[(row * params.groups + params.group0 + g) * kk * BINS + lid] = sums[lid];
  }
}

@compute @workgroup_size(WG)
fn pick(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = flat_index(gid, nwg, WG); // (row, query) pair
  if (j >= params.rows * params.k) { return; }
  let row = j / params.k;
  let q = j % params.k;
  let s = 4u * j;
  let remaining = state[s + 2u];
  let flags = state[s + 3u];
  if (remaining == 0u || (flags & 1u) != 0u) { return; }
  var above = 0u;
  for (var d = i32(BINS) - 1i; d >= 0i; d--) {
    var c = 0u;
    for (var g = 0u; g < params.groups; g++) {
      c += partial[((row * params.groups + g) * params.k + q) * BINS + u32(d)];
    }
    if (above + c >= remaining) {
      let left = remaining - above;
      state[s + pass_.phase] = state[s + pass_.phase] | (u32(d) << pass_.shift);
      state[s + 2u] = left;
      if (pass_.phase == 0u && pass_.shift == 0u) {
        let upper = (flags & 2u) != 0u;
        if (!upper && left == c) { state[s + 3u] = flags | 1u; }
        if (upper && left == 1u) {
          state[s + 1u] = 0xFFFFFFFFu;
          state[s + 3u] = flags | 1u;
        }
      }
      return;
    }
    above += c;
  }
}
