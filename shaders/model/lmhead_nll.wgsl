// Streaming log-softmax + NLL over vocabulary chunks: for the chunk of columns [v0, v0 + VC)
// model/lmhead_lse.wgsl has written, per row, nt tile partials (max, Σ exp(z − max)) into part
// (rows, ld, 2) and, where the row's target lies in the chunk, its logit into nll[row]. This
// kernel folds the chunk's partials into a running (max, sum of exp) per row, so (rows, V) logits
// never exist, and on the last chunk writes nll[r] = max + log(sum) − logit[target]; target < 0
// means no prediction at this row (nll 0). One workgroup per row.
override WG: u32 = 256;
// @include model/reduce.wgsl

struct Params { rows: u32, nt: u32, ld: u32, v0: u32, first: u32, last: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>; // (rows, 3): max, sum, unused
@group(0) @binding(4) var<storage, read_write> nll: array<f32>;   // (rows): target logit, then NLL

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let lid = lid3.x;
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.ld * 2u;
  var mx = -3.0e38;
  for (var c = lid; c < p.nt; c += WG) { mx = max(mx, part[base + 2u * c]); }
  let cmax = wg_max(mx, lid);
  var s = 0.0;
  for (var c = lid; c < p.nt; c += WG) { s += part[base + 2u * c + 1u] * exp(part[base + 2u * c] - cmax); }
  let csum = wg_sum(s, lid);
  if (lid != 0u) { return; }
  var m = cmax;
  var sum = csum;
  if (p.first == 0u) {
    let om = state[row * 3u];
    m = max(om, cmax);
    sum = state[row * 3u + 1u] * exp(om - m) + csum * exp(cmax - m);
  }
  state[row * 3u] = m;
  state[row * 3u + 1u] = sum;
  if (p.last != 0u) {
    let tgt = targets[row];
    nll[row] = select(0.0, m + log(sum) - nll[row], tgt >= 0);
  }
}
