// LM head logits with the log-sum-exp in the matmul epilogue: the (BM, BM) tile of logits
// z = x · Wᵀ of vocabulary columns [n0 + col0, n0 + col0 + BM) (model/matmul_tile.wgsl) never
// leaves the workgroup; per row it writes the tile's max and Σ exp(z − max) into
// part (rows, ldy, 2) at column-tile e1 + wid.x, and the invocation holding a row's target
// column writes that logit into tl[row]. model/lmhead_nll.wgsl folds the partials. With softcap
// c > 0 (Gemma 2's final_logit_softcapping, bits in e0) every logit z is read as c·tanh(z / c).
// Grid: (ceil(N / BM), ceil(M / BM)).
// @include model/matmul_tile.wgsl
@group(0) @binding(3) var<storage, read> targets: array<i32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;
@group(0) @binding(5) var<storage, read_write> tl: array<f32>;

// (BM rows, TS invocations per row) per-invocation values, for the row reductions.
var<workgroup> red: array<f32, BM * TS>;

@compute @workgroup_size(TS, TS)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let accs = tile_product(lid, wid);
  let row0 = wid.y * BM;
  let col0 = wid.x * BM;
  let softcap = bitcast<f32>(p.e0);
  var z: array<vec4f, 4>;
  var mx = vec4f(-3.0e38);
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + 4u * lid.y + i;
    var zi = accs[i];
    // tanh(15) == 1 in f32; the clamp keeps tanh lowerings away from overflow.
    if (softcap > 0.0) { zi = softcap * tanh(clamp(zi / softcap, vec4f(-15.0), vec4f(15.0))); }
    for (var j = 0u; j < 4u; j++) {
      let n = col0 + 4u * lid.x + j;
      if (m < p.M && n < p.N) {
        mx[i] = max(mx[i], zi[j]);
        let tgt = targets[m];
        if (tgt >= 0 && u32(tgt) == p.n0 + n) { tl[m] = zi[j]; }
      } else {
        zi[j] = -3.0e38;
      }
    }
    z[i] = zi;
  }
  // Row max over the tile: TS invocations per row.
  for (var i = 0u; i < 4u; i++) { red[(4u * lid.y + i) * TS + lid.x] = mx[i]; }
  workgroupBarrier();
  var rmax = vec4f(-3.0e38);
  for (var i = 0u; i < 4u; i++) {
    for (var c = 0u; c < TS; c++) { rmax[i] = max(rmax[i], red[(4u * lid.y + i) * TS + c]); }
  }
  workgroupBarrier();
  for (var i = 0u; i < 4u; i++) {
    var s = 0.0;
    for (var j = 0u; j < 4u; j++) {
      if (z[i][j] > -1.0e38) { s += exp(z[i][j] - rmax[i]); }
    }
    red[(4u * lid.y + i) * TS + lid.x] = s;
  }
  workgroupBarrier();
  if (lid.x == 0u) {
    for (var i = 0u; i < 4u; i++) {
      let m = row0 + 4u * lid.y + i;
      if (m >= p.M) { continue; }
      var s = 0.0;
      for (var c = 0u; c < TS; c++) { s += red[(4u * lid.y + i) * TS + c]; }
      let at = (m * p.ldy + p.e1 + wid.x) * 2u;
      part[at] = rmax[i];
      part[at + 1u] = s;
    }
  }
}
