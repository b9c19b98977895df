/**
 * Float64 reference for layerDistances: whole tensors as float64 arrays, grouped by a given
 * function, distance = sqrt of the sum of squared differences. Deliberately naive.
 */
export function layerDistancesRef(
  base: ReadonlyMap<string, Float64Array>,
  models: readonly ReadonlyMap<string, Float64Array>[],
  groupOf: (name: string) => string | null,
  groups: readonly string[],
): number[][] {
  return models.map((m) =>
    groups.map((g) => {
      let s = 0;
      for (const [name, b] of base) {
        if (groupOf(name) !== g) continue;
        const x = m.get(name)!;
        for (let k = 0; k < b.length; k++) s += (x[k]! - b[k]!) ** 2;
      }
      return Math.sqrt(s);
    }),
  );
}

/** ‖θ‖₂ of the base over each group, naively. */
export function groupNormsRef(base: ReadonlyMap<string, Float64Array>, groupOf: (name: string) => string | null, groups: readonly string[]): number[] {
  return groups.map((g) => {
    let s = 0;
    for (const [name, b] of base) if (groupOf(name) === g) for (const x of b) s += x * x;
    return Math.sqrt(s);
  });
}
