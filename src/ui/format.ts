/** Display formats for the checkpoint cards. Exact values go in `title` attributes. */

const countUnits = [
  { value: 1e12, suffix: 'T' },
  { value: 1e9, suffix: 'B' },
  { value: 1e6, suffix: 'M' },
  { value: 1e3, suffix: 'K' },
];

/** 12 -> '12', 12_345 -> '12.3 K', 124_439_808 -> '124.4 M'. */
export function formatCount(n: number): string {
  for (const { value, suffix } of countUnits) {
    // Round first so 999_950 reads '1.0 M', not '1000.0 K'.
    if (Math.abs(n) >= value * 0.99995) return `${(n / value).toFixed(1)} ${suffix}`;
  }
  return String(n);
}

/** (768, 2304) style, as the comments write shapes; a scalar is '()'. */
export function formatShape(shape: readonly number[]): string {
  return `(${shape.join(', ')})`;
}

/** 'BF16 · F32', largest share first. */
export function formatDtypes(dtypes: Readonly<Record<string, number>>): string {
  return Object.entries(dtypes)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([dtype]) => dtype)
    .join(' · ');
}

/** Perplexity with 4 decimals (fixed width in the tables: tabular figures). */
export function formatPpl(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(4);
}

/** A task score (acc, exact match) with 3 decimals, and its standard error when given. */
export function formatScore(x: number | undefined, stderr?: number): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  return stderr === undefined || !Number.isFinite(stderr) ? x.toFixed(3) : `${x.toFixed(3)} ± ${stderr.toFixed(3)}`;
}

/** Milliseconds as '42 ms' or '1.25 s'. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** Seconds left as '12 s' or '3 min 5 s'. */
export function formatEta(s: number | null): string {
  if (s === null) return 'estimating…';
  if (s < 60) return `${Math.ceil(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.ceil(s % 60)} s`;
}

/** A coefficient: sign always shown, two decimals ('+1.00', '−0.25'). */
export function formatCoef(x: number): string {
  return `${x < 0 ? '−' : '+'}${Math.abs(x).toFixed(2)}`;
}
