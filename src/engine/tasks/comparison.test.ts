import { describe, expect, it } from 'vitest';
import { comparisonCsv, comparisonMarkdown, comparisonTable, type ComparisonInput } from './comparison.ts';

const input: ComparisonInput = {
  distributions: [
    { id: 'prose', name: 'prose', metric: 'acc' },
    { id: 'math', name: 'arithmetic', metric: 'exact_match' },
    { id: 'code', name: 'code' },
  ],
  mixing: { name: 'mixing', ppl: { prose: 10, math: 4, code: 12 }, score: { prose: 0.5, math: 0.2 }, tokens: 4000 },
  dem: { name: 'ω prose 0.5, math 1, code 1', ppl: { prose: 9, math: 4.2, code: 11 }, score: { prose: 0.6, math: 0.2 } },
  fineTunes: [
    { name: 'ft-prose', ppl: { prose: 8, math: 6, code: 14 }, score: { prose: 0.7, math: 0 }, tokens: 1000 },
    { name: 'ft-math', ppl: { prose: 11, math: 3, code: 13 }, score: { prose: 0.4, math: 0.5 }, tokens: 1500 },
    { name: 'ft-code', ppl: { prose: 12, math: 5, code: 9 }, score: { prose: 0.3, math: 0.1 }, tokens: 1500 },
  ],
  base: { name: 'base', ppl: { prose: 12, math: 5, code: 13 }, score: { prose: 0.4, math: 0.1 } },
  searchPoints: 20,
  validationTokens: 3000,
};

describe('the DEM-vs-mixing table', () => {
  const t = comparisonTable(input);

  it('has data mixing, the perplexity-chosen DEM merge, the best single fine-tune (lowest mean ppl) and the base', () => {
    expect(t.rows.map((r) => [r.kind, r.name])).toEqual([
      ['mixing', 'mixing'],
      ['dem', 'ω prose 0.5, math 1, code 1'],
      // Mean ppl: ft-prose 28/3, ft-math 9, ft-code 26/3 → ft-code.
      ['fine-tune', 'ft-code'],
      ['base', 'base'],
    ]);
    const dem = t.rows[1]!;
    expect(dem.meanPpl).toBeCloseTo(24.2 / 3, 12);
    // Means of the task scores over the distributions that have a task (code has none).
    expect(dem.meanScore).toBeCloseTo(0.4, 12);
    expect(Object.keys(dem.score)).toEqual(['prose', 'math']);
    // DEM's training is the fine-tunes together.
    expect(dem.tokens).toBe(4000);
    expect(t.rows[3]!.tokens).toBe(0);
  });

  it('relative improvement of DEM over mixing: (mix − DEM)/mix for perplexity, (DEM − mix)/mix for scores', () => {
    const i = t.improvement!;
    expect(i.ppl.prose).toBeCloseTo(0.1, 12);
    expect(i.ppl.math).toBeCloseTo(-0.05, 12);
    expect(i.score.prose).toBeCloseTo(0.2, 12);
    expect(i.score.math).toBeCloseTo(0, 12);
    expect(i.meanPpl).toBeCloseTo((26 / 3 - 24.2 / 3) / (26 / 3), 12);
    expect(i.meanScore).toBeCloseTo((0.4 - 0.35) / 0.35, 12);
    expect(t.winner).toEqual({ ppl: 'DEM', score: 'DEM' });
  });

  it('costs: fine-tunes together vs one mixing run vs a grid over mixing ratios as large as the search', () => {
    expect(t.costs).toEqual({ fineTunes: 4000, mixing: 4000, gridPoints: 20, mixingGrid: 80000, demSearchForward: 60000, gridOverDem: 20 });
  });

  it('exports as CSV and Markdown with the same cells', () => {
    const csv = comparisonCsv(t).trim().split('\n');
    expect(csv[0]).toBe('model,prose ppl,arithmetic ppl,code ppl,prose acc,arithmetic exact match,mean ppl,mean task score,tokens trained');
    expect(csv[1]).toBe('data mixing (mixing),10.000,4.000,12.000,0.500,0.200,8.667,0.350,4000');
    expect(csv[2]).toBe('"DEM (perplexity-chosen): ω prose 0.5, math 1, code 1",9.000,4.200,11.000,0.600,0.200,8.067,0.400,4000');
    expect(csv[5]).toBe('"grid over mixing ratios (20 runs, not trained)",,,,,,,,80000');
    expect(csv[6]).toBe('"DEM vs data mixing (relative, > 0: DEM better)",+10.0%,-5.0%,+8.3%,+20.0%,+0.0%,+6.9%,+14.3%,');
    const md = comparisonMarkdown(t);
    expect(md).toContain('| model | prose ppl | arithmetic ppl | code ppl | prose acc | arithmetic exact match | mean ppl | mean task score | tokens trained |');
    expect(md).toContain('| data mixing (mixing) | 10.000 | 4.000 | 12.000 | 0.500 | 0.200 | 8.667 | 0.350 | 4,000 |');
    expect(md).toContain("Tokens trained: the fine-tunes together 4,000; one data-mixing run 4,000; a grid over mixing ratios with DEM's 20 candidates 80,000 (20.0x DEM's training).");
  });

  it('without a mixing checkpoint: no improvement row, no winner', () => {
    const u = comparisonTable({ ...input, mixing: null });
    expect(u.improvement).toBeNull();
    expect(u.winner).toEqual({ ppl: null, score: null });
    expect(u.rows.map((r) => r.kind)).toEqual(['dem', 'fine-tune', 'base']);
  });
});
