/**
 * The DEM paper's comparison at workspace scale: data mixing vs the DEM merge chosen by validation
 * perplexity vs the best single fine-tune (and the base), per distribution — perplexity and task
 * score — with DEM's relative improvement over mixing and what each cost in tokens trained. The
 * studio's table view and the demo's manifest (scripts/demo/tasks.ts) both build it here, and
 * both export it as CSV and Markdown.
 *
 * Relative improvement of DEM over data mixing (> 0: DEM better): perplexity (mix − DEM) / mix,
 * task score (DEM − mix) / mix. Costs: DEM trains every fine-tune once (their tokens together);
 * data mixing trains one run per mixing ratio tried, so a grid over ratios with as many
 * candidates as DEM's search evaluated costs that many runs. DEM's candidates cost forward passes
 * over the validation texts, no training.
 */
export interface MeasuredModel {
  /** A checkpoint name, or how the merge is described. */
  name: string;
  /** Perplexity by distribution id. */
  ppl: Record<string, number | undefined>;
  /** Task score (acc or exact match) by distribution id; absent where not measured or no task. */
  score: Record<string, number | undefined>;
  /** Tokens trained from the shared base to make it; undefined when not known. */
  tokens?: number;
}

export interface ComparisonDistribution {
  id: string;
  name: string;
  /** The task's headline metric; undefined when the distribution has no task file. */
  metric?: 'acc' | 'exact_match';
}

export interface ComparisonInput {
  distributions: ComparisonDistribution[];
  mixing: MeasuredModel | null;
  /** The merge with the lowest mean validation perplexity among those searched. */
  dem: MeasuredModel | null;
  fineTunes: MeasuredModel[];
  base?: MeasuredModel | null;
  /** Candidate merges DEM's search evaluated. */
  searchPoints: number;
  /** Tokens of all validation texts: one candidate's forward cost. */
  validationTokens?: number;
}

export type RowKind = 'mixing' | 'dem' | 'fine-tune' | 'base';

export interface ComparisonRow {
  kind: RowKind;
  label: string;
  name: string;
  ppl: Record<string, number | undefined>;
  score: Record<string, number | undefined>;
  /** Mean over the distributions; undefined unless every one was measured. */
  meanPpl?: number;
  /** Mean over the distributions with a task; undefined unless each was measured. */
  meanScore?: number;
  tokens?: number;
}

export interface Improvement {
  ppl: Record<string, number | undefined>;
  score: Record<string, number | undefined>;
  meanPpl?: number;
  meanScore?: number;
}

export interface ComparisonCosts {
  /** Tokens of all fine-tunes together (DEM's training). */
  fineTunes?: number;
  /** Tokens of the one data-mixing run. */
  mixing?: number;
  /** Candidates in DEM's search = mixing runs of an equally large grid over mixing ratios. */
  gridPoints: number;
  /** gridPoints × mixing. */
  mixingGrid?: number;
  /** Forward tokens of DEM's search (gridPoints × validation tokens), not trained. */
  demSearchForward?: number;
  /** mixingGrid / fineTunes: how many times DEM's training a mixing-ratio grid costs. */
  gridOverDem?: number;
}

export interface ComparisonTable {
  distributions: ComparisonDistribution[];
  rows: ComparisonRow[];
  /** DEM relative to data mixing; null without both rows. */
  improvement: Improvement | null;
  costs: ComparisonCosts;
  /** Which of DEM and data mixing is better on the means; null when not comparable. */
  winner: { ppl: 'DEM' | 'data mixing' | 'tie' | null; score: 'DEM' | 'data mixing' | 'tie' | null };
}

function mean(values: (number | undefined)[]): number | undefined {
  if (values.length === 0 || values.some((v) => v === undefined || !Number.isFinite(v))) return undefined;
  return (values as number[]).reduce((a, b) => a + b, 0) / values.length;
}

function row(kind: RowKind, label: string, m: MeasuredModel, dists: readonly ComparisonDistribution[]): ComparisonRow {
  return {
    kind,
    label,
    name: m.name,
    ppl: Object.fromEntries(dists.map((d) => [d.id, m.ppl[d.id]])),
    score: Object.fromEntries(dists.filter((d) => d.metric).map((d) => [d.id, m.score[d.id]])),
    meanPpl: mean(dists.map((d) => m.ppl[d.id])),
    meanScore: dists.some((d) => d.metric) ? mean(dists.filter((d) => d.metric).map((d) => m.score[d.id])) : undefined,
    tokens: m.tokens,
  };
}

const lowerBetter = (a: number, b: number): number => (b - a) / b;
const higherBetter = (a: number, b: number): number | undefined => (b === 0 ? undefined : (a - b) / b);

function winner(dem: number | undefined, mix: number | undefined, lower: boolean): 'DEM' | 'data mixing' | 'tie' | null {
  if (dem === undefined || mix === undefined) return null;
  if (dem === mix) return 'tie';
  return (lower ? dem < mix : dem > mix) ? 'DEM' : 'data mixing';
}

export function comparisonTable(input: ComparisonInput): ComparisonTable {
  const dists = input.distributions;
  const rows: ComparisonRow[] = [];
  if (input.mixing) rows.push(row('mixing', 'data mixing', input.mixing, dists));
  const dem = input.dem ? row('dem', 'DEM (perplexity-chosen)', input.dem, dists) : undefined;
  if (dem) {
    // DEM's training is every fine-tune; the merge itself trains nothing.
    dem.tokens = sumTokens(input.fineTunes);
    rows.push(dem);
  }
  const tuned = input.fineTunes.map((m) => row('fine-tune', 'best single fine-tune', m, dists));
  const best = tuned.reduce<ComparisonRow | undefined>((a, b) => (b.meanPpl !== undefined && (a?.meanPpl === undefined || b.meanPpl < a.meanPpl) ? b : a), undefined);
  if (best) rows.push(best);
  if (input.base) rows.push({ ...row('base', 'base', input.base, dists), tokens: input.base.tokens ?? 0 });
  const mix = rows.find((r) => r.kind === 'mixing');
  const improvement: Improvement | null =
    dem && mix
      ? {
          ppl: Object.fromEntries(dists.map((d) => [d.id, dem.ppl[d.id] !== undefined && mix.ppl[d.id] !== undefined ? lowerBetter(dem.ppl[d.id]!, mix.ppl[d.id]!) : undefined])),
          score: Object.fromEntries(dists.filter((d) => d.metric).map((d) => [d.id, dem.score[d.id] !== undefined && mix.score[d.id] !== undefined ? higherBetter(dem.score[d.id]!, mix.score[d.id]!) : undefined])),
          meanPpl: dem.meanPpl !== undefined && mix.meanPpl !== undefined ? lowerBetter(dem.meanPpl, mix.meanPpl) : undefined,
          meanScore: dem.meanScore !== undefined && mix.meanScore !== undefined ? higherBetter(dem.meanScore, mix.meanScore) : undefined,
        }
      : null;
  const fineTunes = sumTokens(input.fineTunes);
  const mixing = input.mixing?.tokens;
  const gridPoints = input.searchPoints;
  const mixingGrid = mixing === undefined ? undefined : mixing * gridPoints;
  const costs: ComparisonCosts = {
    fineTunes,
    mixing,
    gridPoints,
    mixingGrid,
    demSearchForward: input.validationTokens === undefined ? undefined : input.validationTokens * gridPoints,
    gridOverDem: mixingGrid !== undefined && fineTunes ? mixingGrid / fineTunes : undefined,
  };
  return {
    distributions: dists,
    rows,
    improvement,
    costs,
    winner: { ppl: winner(dem?.meanPpl, mix?.meanPpl, true), score: winner(dem?.meanScore, mix?.meanScore, false) },
  };
}

function sumTokens(models: readonly MeasuredModel[]): number | undefined {
  if (models.length === 0 || models.some((m) => m.tokens === undefined)) return undefined;
  return models.reduce((s, m) => s + m.tokens!, 0);
}

// ---- export --------------------------------------------------------------------------------

const METRIC_LABEL = { acc: 'acc', exact_match: 'exact match' } as const;

/** Column headers and cells (strings) shared by the CSV and Markdown forms. */
function cells(t: ComparisonTable, forCsv: boolean): { header: string[]; body: string[][]; notes: string[] } {
  const num = (v: number | undefined, digits: number): string => (v === undefined ? '' : v.toFixed(digits));
  const pct = (v: number | undefined): string => (v === undefined ? '' : `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}%`);
  const tokens = (v: number | undefined): string => (v === undefined ? '' : forCsv ? String(v) : v.toLocaleString('en-US'));
  const scored = t.distributions.filter((d) => d.metric);
  const header = [
    'model',
    ...t.distributions.map((d) => `${d.name} ppl`),
    ...scored.map((d) => `${d.name} ${METRIC_LABEL[d.metric!]}`),
    'mean ppl',
    ...(scored.length ? ['mean task score'] : []),
    'tokens trained',
  ];
  const body = t.rows.map((r) => [
    r.kind === 'fine-tune' || r.kind === 'base' || r.kind === 'mixing' ? `${r.label} (${r.name})` : `${r.label}: ${r.name}`,
    ...t.distributions.map((d) => num(r.ppl[d.id], 3)),
    ...scored.map((d) => num(r.score[d.id], 3)),
    num(r.meanPpl, 3),
    ...(scored.length ? [num(r.meanScore, 3)] : []),
    tokens(r.tokens),
  ]);
  const c = t.costs;
  if (c.mixingGrid !== undefined) {
    body.push([`grid over mixing ratios (${c.gridPoints} runs, not trained)`, ...t.distributions.map(() => ''), ...scored.map(() => ''), '', ...(scored.length ? [''] : []), tokens(c.mixingGrid)]);
  }
  if (t.improvement) {
    const i = t.improvement;
    body.push(['DEM vs data mixing (relative, > 0: DEM better)', ...t.distributions.map((d) => pct(i.ppl[d.id])), ...scored.map((d) => pct(i.score[d.id])), pct(i.meanPpl), ...(scored.length ? [pct(i.meanScore)] : []), '']);
  }
  const notes: string[] = [];
  if (c.fineTunes !== undefined && c.mixing !== undefined) {
    notes.push(
      `Tokens trained: the fine-tunes together ${tokens(c.fineTunes)}; one data-mixing run ${tokens(c.mixing)}; ` +
        `a grid over mixing ratios with DEM's ${c.gridPoints} candidates ${tokens(c.mixingGrid)}` +
        `${c.gridOverDem === undefined ? '' : ` (${c.gridOverDem.toFixed(1)}x DEM's training)`}.`,
    );
  }
  if (c.demSearchForward !== undefined) notes.push(`DEM's search: ${c.gridPoints} candidates, ${tokens(c.demSearchForward)} validation tokens of forward passes, no training.`);
  return { header, body, notes };
}

const csvField = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function comparisonCsv(t: ComparisonTable): string {
  const { header, body } = cells(t, true);
  return `${[header, ...body].map((r) => r.map(csvField).join(',')).join('\n')}\n`;
}

export function comparisonMarkdown(t: ComparisonTable): string {
  const { header, body, notes } = cells(t, false);
  const line = (r: string[]): string => `| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  const align = `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`;
  return `${[line(header), align, ...body.map(line)].join('\n')}\n${notes.length ? `\n${notes.join('\n')}\n` : ''}`;
}
