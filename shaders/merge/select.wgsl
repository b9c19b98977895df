// Radix select of the k-th largest |x| in each row of x (N, n) f32, on the float bits: for
// non-negative floats the order of the bits (x & 0x7FFFFFFF) is the order of the values (NaN
// above Inf). Four passes, most significant byte first (SHIFT = 24, 16, 8, 0):
//   histogram: count, per (row, query), the elements whose bits above SHIFT+8 equal the prefix
//              found so far, by their byte at SHIFT (workgroup-local atomics, then global);
//   pick:      walk that histogram from 255 down to the byte holding the remaining rank, fix it
//              into the prefix, subtract the counts above it, and clear the histogram.
// state (N, K, 2) = [prefix, remaining rank]; after pass SHIFT = 0 the prefix is the k-th largest
// bit pattern. Rank 0 (the CPU sets prefix 0xFFFFFFFF) means "above everything" and is skipped.
// Twin: src/engine/kernels/mergeSelect.ts.
// @include common/index.wgsl

override WG: u32 = 256;
override SHIFT: u32 = 24u;
const MAX_K: u32 = 2u;

struct Params { n: u32, rows: u32, k: u32, _pad: u32 }

// pick uses bindings 0..2 only; x comes last so both entry points share one binding order.
@group(0) @binding(0) var<storage, read_write> state: array<u32>;       // (N, K, 2)
@group(0) @binding(1) var<storage, read_write> hist: array<atomic<u32>>; // (N, K, 256)
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> x: array<u32>;                 // (N, n) f32 bits

var<workgroup> local_hist: array<atomic<u32>, 512>; // (MAX_K, 256)

// Bits above the byte being decided; none on the first pass. A right shift, because left
// shifts that drop set bits (or by 32) are errors in WGSL constant evaluation.
fn high_mask() -> u32 {
  return ~(0xFFFFFFFFu >> (24u - SHIFT));
}

@compute @workgroup_size(WG)
fn histogram(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let row = gid.z;
  let kk = params.k;
  for (var e = lid; e < MAX_K * 256u; e += WG) { atomicStore(&local_hist[e], 0u); }
  workgroupBarrier();
  let i = flat_index(gid, nwg, WG);
  if (i < params.n) {
    let b = x[row * params.n + i] & 0x7FFFFFFFu;
    let digit = (b >> SHIFT) & 0xFFu;
    for (var q = 0u; q < kk; q++) {
      let s = 2u * (row * kk + q);
      if (state[s + 1u] != 0u && (b & high_mask()) == state[s]) {
        atomicAdd(&local_hist[q * 256u + digit], 1u);
      }
    }
  }
  workgroupBarrier();
  for (var e = lid; e < kk * 256u; e += WG) {
    let c = atomicLoad(&local_hist[e]);
    if (c != 0u) { atomicAdd(&hist[row * kk * 256u + e], c); }
  }
}

@compute @workgroup_size(WG)
fn pick(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = flat_index(gid, nwg, WG); // (row, query) pair
  if (j >= params.rows * params.k) { return; }
  let s = 2u * j;
  let remaining = state[s + 1u];
  if (remaining == 0u) { return; }
  var above = 0u;
  var found = false;
  for (var d = 255i; d >= 0i; d--) {
    let c = atomicLoad(&hist[j * 256u + u32(d)]);
    if (!found && above + c >= remaining) {
      state[s] = state[s] | (u32(d) << SHIFT);
      state[s + 1u] = remaining - above;
      found = true;
    }
    if (!found) { above += c; }
    atomicStore(&hist[j * 256u + u32(d)], 0u);
  }
}
