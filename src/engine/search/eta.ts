/** Seconds left at the mean pace so far; undefined before the first evaluation finishes. */
export function etaSeconds(done: number, total: number, elapsedMs: number): number | undefined {
  if (done <= 0 || total <= done) return done >= total ? 0 : undefined;
  return ((elapsedMs / done) * (total - done)) / 1000;
}
