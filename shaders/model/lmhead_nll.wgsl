// Streaming log-softmax + NLL over vocabulary chunks: the LM head matmul writes logits for
// columns [v0, v0 + VC) into a (rows, VC) chunk (row stride ld); this kernel folds the chunk into
// a running (max, sum of exp, target logit) per row, so (rows, V) logits never exist at once.
// On the last chunk it writes nll[r] = max + log(sum) - logit[target]; target < 0 means no
// prediction at this row (nll 0). With softcap c > 0 (Gemma 2's final_logit_softcapping) every
// logit z is read as c·tanh(z / c). One workgroup per row.
override WG: u32 = 256;
// @include model/reduce.wgsl

struct Params { rows: u32, VC: u32, ld: u32, v0: u32, first: u32, last: u32, softcap: f32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>; // (rows, 3): max, sum, target logit
@group(0) @binding(4) var<storage, read_write> nll: array<f32>;   // (rows)

fn logit(i: u32) -> f32 {
  let z = logits[i];
  // tanh(15) == 1 in f32; the clamp keeps tanh lowerings away from overflow.
  if (p.softcap > 0.0) { return p.softcap * tanh(clamp(z / p.softcap, -15.0, 15.0)); }
  return z;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let lid = lid3.x;
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.ld;
  var mx = -3.0e38;
  for (var c = lid; c < p.VC; c += WG) { mx = max(mx, logit(base + c)); }
  let cmax = wg_max(mx, lid);
  var s = 0.0;
  for (var c = lid; c < p.VC; c += WG) { s += exp(logit(base + c) - cmax); }
  let csum = wg_sum(s, lid);
  if (lid != 0u) { return; }
  let tgt = targets[row];
  var m = cmax;
  var sum = csum;
  var tl = 0.0;
  if (p.first == 0u) {
    let om = state[row * 3u];
    m = max(om, cmax);
    sum = state[row * 3u + 1u] * exp(om - m) + csum * exp(cmax - m);
    tl = state[row * 3u + 2u];
  }
  if (tgt >= 0 && u32(tgt) >= p.v0 && u32(tgt) < p.v0 + p.VC) { tl = logit(base + u32(tgt) - p.v0); }
  state[row * 3u] = m;
  state[row * 3u + 1u] = sum;
  state[row * 3u + 2u] = tl;
  if (p.last != 0u) {
    nll[row] = select(0.0, m + log(sum) - tl, tgt >= 0);
  }
}
