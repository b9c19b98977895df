/**
 * Tables the studio shows, as files: CSV (RFC 4180: quoted when a cell has a comma, quote or line
 * break; numbers at full precision) and JSON (an array of objects keyed by column).
 */
export interface Table {
  columns: string[];
  rows: (string | number | undefined)[][];
}

const cell = (v: string | number | undefined): string => {
  if (v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function tableCsv(t: Table): string {
  return [t.columns, ...t.rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

export function tableJson(t: Table): string {
  const objects = t.rows.map((r) => Object.fromEntries(t.columns.map((c, i) => [c, r[i] === undefined || (typeof r[i] === 'number' && !Number.isFinite(r[i])) ? null : r[i]])));
  return `${JSON.stringify(objects, null, 2)}\n`;
}

interface RowLike {
  id: number;
  weights: number[];
  ppls: Record<string, number>;
  objective: number;
  scores?: Record<string, number>;
  taskObjective?: number;
}

/** Search or sweep rows: the coefficients by fine-tune name, perplexity (and task score) per set by name. */
export function searchTable(rows: readonly RowLike[], coefNames: readonly string[], sets: readonly { id: string; name: string }[]): Table {
  const scored = sets.filter((s) => rows.some((r) => r.scores?.[s.id] !== undefined));
  const columns = ['#', ...coefNames.map((n) => `ω ${n}`), ...sets.map((s) => `ppl ${s.name}`), 'mean ppl', ...scored.map((s) => `score ${s.name}`), ...(scored.length ? ['mean score'] : [])];
  return {
    columns,
    rows: rows.map((r) => [r.id, ...coefNames.map((_, i) => r.weights[i]), ...sets.map((s) => r.ppls[s.id]), r.objective, ...scored.map((s) => r.scores?.[s.id]), ...(scored.length ? [r.taskObjective] : [])]),
  };
}
