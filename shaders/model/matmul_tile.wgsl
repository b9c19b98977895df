// The main loop of the tiled matmul, shared by model/matmul.wgsl (y stored, bias added) and
// model/lmhead_lse.wgsl (log-sum-exp of the logits in the epilogue): a TS x TS workgroup computes
// a (4*TS, 4*TS) tile of y, each invocation a 4x4 block in vec4 accumulators. The (BK, 4*TS) slices of x and W
// live in workgroup memory twice (double-buffered): while the tile of step t is multiplied, each
// invocation already holds its part of step t + 1 in registers (one pair of x and one pair of W
// values: BK = TS / 2) and stores it into the other buffer afterwards, so one barrier per step.
// A pair is two elements adjacent in memory (along k for x and nn.Linear W, along n for Conv1D
// W): for F16/BF16 one 32-bit word when the pair starts on an even element.
// Tile rows (one per k) are padded by one vec4: the (row, k-pair) stores of 32 consecutive
// invocations then fall in 32 distinct banks.
// x (M, K) f32 at x[m*lda + xoff + k].
// W holds raw weight words (F32/F16/BF16, decoded here); output column n reads weight row n0 + n:
//   TRANS_W = false: nn.Linear, W (NW, K), element (n, k) at (n0 + n) * K + k
//   TRANS_W = true:  GPT-2 Conv1D, W (K, NW), element (n, k) at k * ldw + n0 + n
// n0 lets the LM head stream over vocabulary chunks. The including shader binds 0 (p), 1 (x) and
// 2 (w) from here and its own from 3.
// @include common/dtype.wgsl
override TS: u32 = 16u;
override DT_W: u32 = 0u;
override TRANS_W: bool = false;
override BM: u32 = 4u * TS;
override BK: u32 = TS / 2u;
override QP: u32 = BM / 4u + 1u; // vec4s per padded tile row

// ldy, yoff and e0..e2 belong to the epilogue.
struct Params { M: u32, N: u32, K: u32, lda: u32, xoff: u32, ldy: u32, yoff: u32, n0: u32, ldw: u32, e0: u32, e1: u32, e2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;

// Two (BK, QP) buffers each, k-major, so one vec4 read gives 4 consecutive rows (x) or output
// columns (W) at one k.
var<workgroup> xs: array<vec4f, 2u * BK * QP>;
var<workgroup> ws: array<vec4f, 2u * BK * QP>;

// W elements i and i + 1 (flat indices), each only when its `ok`.
fn w_pair(i: u32, ok0: bool, ok1: bool) -> vec2f {
  var r = vec2f(0.0);
  if (DT_W != DT_F32 && (i & 1u) == 0u) {
    if (ok0 || ok1) {
      let word = w[i >> 1u];
      if (ok0) { r.x = decode_value(word, i, DT_W); }
      if (ok1) { r.y = decode_value(word, i + 1u, DT_W); }
    }
    return r;
  }
  if (ok0) { r.x = decode_value(w[word_index(i, DT_W)], i, DT_W); }
  if (ok1) { r.y = decode_value(w[word_index(i + 1u, DT_W)], i + 1u, DT_W); }
  return r;
}

// vec4 holding tile column c at k in buffer buf (lane c % 4).
fn slot(buf: u32, k: u32, c: u32) -> u32 {
  return buf * BK * QP + k * QP + c / 4u;
}

// The (BM, BM) tile of x · Wᵀ at rows wid.y * BM, columns wid.x * BM: invocation (tx, ty)'s 4x4
// block, rows 4 ty + i (accs[i]) and columns 4 tx + j (lane j). Every invocation must call it
// (barriers).
fn tile_product(lid: vec3u, wid: vec3u) -> array<vec4f, 4> {
  let row0 = wid.y * BM;
  let col0 = wid.x * BM;
  let tid = lid.y * TS + lid.x;
  let half = BK / 2u;
  // This invocation's pair in each tile: x row xr at k 2 xk, 2 xk + 1 ...
  let xr = tid / half;
  let xk = 2u * (tid % half);
  // ... and W: output column wn at k 2 wk, 2 wk + 1 (Linear), or columns wn, wn + 1 at k wk (Conv1D).
  var wn: u32;
  var wk: u32;
  if (TRANS_W) { wn = 2u * (tid % (BM / 2u)); wk = tid / (BM / 2u); } else { wn = tid / half; wk = 2u * (tid % half); }
  let gm = row0 + xr;
  let gn = col0 + wn;

  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  var xv: vec2f;
  var wv: vec2f;
  let steps = (p.K + BK - 1u) / BK;
  for (var t = 0u; t <= steps; t++) {
    // Registers ← step t's pairs (while step t − 1 is multiplied below).
    if (t < steps) {
      let k0 = t * BK;
      xv = vec2f(0.0);
      if (gm < p.M) {
        let xa = gm * p.lda + p.xoff + k0 + xk;
        if (k0 + xk < p.K) { xv.x = x[xa]; }
        if (k0 + xk + 1u < p.K) { xv.y = x[xa + 1u]; }
      }
      if (TRANS_W) {
        let gk = k0 + wk;
        wv = w_pair(gk * p.ldw + p.n0 + gn, gk < p.K && gn < p.N, gk < p.K && gn + 1u < p.N);
      } else {
        let gk = k0 + xk;
        wv = w_pair((p.n0 + gn) * p.K + gk, gn < p.N && gk < p.K, gn < p.N && gk + 1u < p.K);
      }
    }
    if (t > 0u) {
      let base = ((t - 1u) % 2u) * BK * QP;
      for (var kk = 0u; kk < BK; kk++) {
        let a = xs[base + kk * QP + lid.y];
        let b = ws[base + kk * QP + lid.x];
        acc0 = fma(vec4f(a.x), b, acc0);
        acc1 = fma(vec4f(a.y), b, acc1);
        acc2 = fma(vec4f(a.z), b, acc2);
        acc3 = fma(vec4f(a.w), b, acc3);
      }
    }
    // Registers → the other buffer; the barrier also ends every read of it (step t − 2's).
    if (t < steps) {
      let buf = t % 2u;
      xs[slot(buf, xk, xr)][xr % 4u] = xv.x;
      xs[slot(buf, xk + 1u, xr)][xr % 4u] = xv.y;
      if (TRANS_W) {
        ws[slot(buf, wk, wn)][wn % 4u] = wv.x;
        ws[slot(buf, wk, wn + 1u)][(wn + 1u) % 4u] = wv.y;
      } else {
        ws[slot(buf, wk, wn)][wn % 4u] = wv.x;
        ws[slot(buf, wk + 1u, wn)][wn % 4u] = wv.y;
      }
    }
    workgroupBarrier();
  }
  return array<vec4f, 4>(acc0, acc1, acc2, acc3);
}
