// y = x · Wᵀ (+ bias) with the tiled main loop of model/matmul_tile.wgsl.
// y (M, N) f32 at y[m*ldy + yoff + n]; bias (NW) raw words, element n0 + n.
// @include model/matmul_tile.wgsl
override DT_B: u32 = 0u;
override HAS_BIAS: bool = false;
@group(0) @binding(3) var<storage, read> bias: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(TS, TS)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let accs = tile_product(lid, wid);
  let row0 = wid.y * BM;
  let col0 = wid.x * BM;
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + 4u * lid.y + i;
    if (m >= p.M) { continue; }
    let acc = accs[i];
    for (var j = 0u; j < 4u; j++) {
      let n = col0 + 4u * lid.x + j;
      if (n >= p.N) { continue; }
      var v = acc[j];
      if (HAS_BIAS) {
        let bi = p.n0 + n;
        v += decode_value(bias[word_index(bi, DT_B)], bi, DT_B);
      }
      y[m * p.ldy + p.yoff + n] = v;
    }
  }
}
