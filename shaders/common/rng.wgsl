// Counter-based RNG for DARE: PCG hash (Jarzynski & Olano, "Hash Functions for GPU Rendering",
// JCGT 2020) chained over (seed, tensor, model, element). Stateless, so any element of any
// tensor can be drawn in any order and the TS twin (src/engine/merge/reference.ts) matches it
// bit for bit.
fn pcg_hash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn row_key(seed: u32, tensor: u32, model: u32) -> u32 {
  return pcg_hash(model ^ pcg_hash(tensor ^ pcg_hash(seed)));
}

fn element_hash(key: u32, element: u32) -> u32 {
  return pcg_hash(pcg_hash(element) ^ key);
}
