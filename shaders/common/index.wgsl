// Flat 1-D invocation index of a grid folded into y by GpuRuntime.grid1d (x would exceed
// maxComputeWorkgroupsPerDimension): gid.x + gid.y * (num_workgroups.x * workgroup size).
fn flat_index(gid: vec3u, nwg: vec3u, wg: u32) -> u32 {
  return gid.x + gid.y * nwg.x * wg;
}
