import { describe, expect, it } from 'vitest';
import { searchTable, tableCsv, tableJson } from './tables.ts';

describe('table downloads', () => {
  const rows: { id: number; weights: number[]; ppls: Record<string, number>; objective: number; scores?: Record<string, number>; taskObjective?: number }[] = [
    { id: 1, weights: [0.5, -0.25], ppls: { s1: 12.345678901234, s2: 7 }, objective: 9.67, scores: { s1: 0.5 }, taskObjective: 0.5 },
    { id: 2, weights: [1, 0], ppls: { s1: 11 }, objective: Infinity },
  ];
  const sets = [
    { id: 's1', name: 'prose, "quoted"' },
    { id: 's2', name: 'code' },
  ];
  const t = searchTable(rows, ['ft-a', 'ft-b'], sets);

  it('search and sweep rows: coefficients and sets by name, scores only for scored sets', () => {
    expect(t.columns).toEqual(['#', 'ω ft-a', 'ω ft-b', 'ppl prose, "quoted"', 'ppl code', 'mean ppl', 'score prose, "quoted"', 'mean score']);
    expect(t.rows[0]).toEqual([1, 0.5, -0.25, 12.345678901234, 7, 9.67, 0.5, 0.5]);
  });

  it('CSV quotes what needs it, keeps full precision and leaves missing or non-finite values empty', () => {
    expect(tableCsv(t).split('\r\n')).toEqual([
      '#,ω ft-a,ω ft-b,"ppl prose, ""quoted""",ppl code,mean ppl,"score prose, ""quoted""",mean score',
      '1,0.5,-0.25,12.345678901234,7,9.67,0.5,0.5',
      '2,1,0,11,,,,',
      '',
    ]);
  });

  it('JSON is one object per row keyed by column, null where the CSV is empty', () => {
    const json = JSON.parse(tableJson(t)) as Record<string, unknown>[];
    expect(json[1]).toEqual({ '#': 2, 'ω ft-a': 1, 'ω ft-b': 0, 'ppl prose, "quoted"': 11, 'ppl code': null, 'mean ppl': null, 'score prose, "quoted"': null, 'mean score': null });
  });
});
