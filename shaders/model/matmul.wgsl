// y = x · Wᵀ (+ bias), tiled and register-blocked: a TS x TS workgroup computes a (4*TS, 4*TS)
// tile of y, each invocation a 4x4 block in vec4 accumulators, staging (BK, 4*TS) slices of x and W
// in workgroup memory.
// x (M, K) f32 at x[m*lda + xoff + k]; y (M, N) f32 at y[m*ldy + yoff + n].
// W holds raw weight words (F32/F16/BF16, decoded here); output column n reads weight row n0 + n:
//   TRANS_W = false: nn.Linear, W (NW, K), element (n, k) at (n0 + n) * K + k
//   TRANS_W = true:  GPT-2 Conv1D, W (K, NW), element (n, k) at k * ldw + n0 + n
// bias (NW) raw words, element n0 + n. n0 lets the LM head stream over vocabulary chunks.
// @include common/dtype.wgsl
override TS: u32 = 16u;
override DT_W: u32 = 0u;
override DT_B: u32 = 0u;
override TRANS_W: bool = false;
override HAS_BIAS: bool = false;
const BK: u32 = 16u;
override BM: u32 = 4u * TS;

struct Params { M: u32, N: u32, K: u32, lda: u32, xoff: u32, ldy: u32, yoff: u32, n0: u32, ldw: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Stored k-major so one vec4 read gives 4 consecutive rows (x) or output columns (W) at one k.
var<workgroup> xs: array<vec4f, BM * BK / 4u>; // (BK, BM)
var<workgroup> ws: array<vec4f, BM * BK / 4u>; // (BK, BM): tile columns are output columns

@compute @workgroup_size(TS, TS)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  // Invocation (tx, ty) owns rows row0 + 4 ty + i and columns col0 + 4 tx + j, i, j < 4.
  let row0 = wid.y * BM;
  let col0 = wid.x * BM;
  let tid = lid.y * TS + lid.x;
  let Q = BM / 4u;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    for (var e = tid; e < BM * BK; e += TS * TS) {
      // x: consecutive invocations walk k, which is contiguous in memory.
      let r = e / BK;
      let kk = e % BK;
      let gm = row0 + r;
      let gk = k0 + kk;
      var xv = 0.0;
      if (gm < p.M && gk < p.K) { xv = x[gm * p.lda + p.xoff + gk]; }
      xs[kk * Q + r / 4u][r % 4u] = xv;
      // W: walk whichever of k (Linear) or n (Conv1D) is contiguous.
      var n: u32;
      var wk: u32;
      if (TRANS_W) { n = e % BM; wk = e / BM; } else { n = e / BK; wk = e % BK; }
      let gn = col0 + n;
      let gwk = k0 + wk;
      var wv = 0.0;
      if (gn < p.N && gwk < p.K) {
        var wi: u32;
        if (TRANS_W) { wi = gwk * p.ldw + p.n0 + gn; } else { wi = (p.n0 + gn) * p.K + gwk; }
        wv = decode_value(w[word_index(wi, DT_W)], wi, DT_W);
      }
      ws[wk * Q + n / 4u][n % 4u] = wv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let a = xs[kk * Q + lid.y];
      let b = ws[kk * Q + lid.x];
      acc0 = fma(vec4f(a.x), b, acc0);
      acc1 = fma(vec4f(a.y), b, acc1);
      acc2 = fma(vec4f(a.z), b, acc2);
      acc3 = fma(vec4f(a.w), b, acc3);
    }
    workgroupBarrier();
  }
  let accs = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    let gm = row0 + 4u * lid.y + i;
    if (gm >= p.M) { continue; }
    let acc = accs[i];
    for (var j = 0u; j < 4u; j++) {
      let gn = col0 + 4u * lid.x + j;
      if (gn >= p.N) { continue; }
      var v = acc[j];
      if (HAS_BIAS) {
        let bi = p.n0 + gn;
        v += decode_value(bias[word_index(bi, DT_B)], bi, DT_B);
      }
      y[gm * p.ldy + p.yoff + gn] = v;
    }
  }
}
