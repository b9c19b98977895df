// MLP activations, in place on a (rows, FF) f32 buffer of n elements.
// gelu: GPT-2's gelu_new (tanh form). silu_mul: a = silu(a) * b (Llama gate * up).
// gelu_mul: a = gelu(a) * b (Gemma's GeGLU: gelu_pytorch_tanh, the same tanh form).
override WG: u32 = 256;

struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

fn gelu_tanh(x: f32) -> f32 {
  // Clamped so tanh never sees a huge argument (some tanh lowerings overflow to NaN); tanh(15) == 1 in f32.
  let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0);
  return 0.5 * x * (1.0 + tanh(u));
}

@compute @workgroup_size(WG)
fn gelu(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  a[i] = gelu_tanh(a[i]);
}

@compute @workgroup_size(WG)
fn gelu_mul(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  a[i] = gelu_tanh(a[i]) * b[i];
}

@compute @workgroup_size(WG)
fn silu_mul(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let g = a[i];
  a[i] = g / (1.0 + exp(-g)) * b[i];
}
