import { useEffect, useMemo, type ReactNode } from 'react';
import { Bar, BarChart, CartesianGrid, ComposedChart, Legend, Line, LineChart, ReferenceLine, ResponsiveContainer, Scatter, Tooltip, XAxis, YAxis } from 'recharts';
import { gridPoints } from '../../engine/index.ts';
import {
  selectAnalyzeLayers,
  selectLayers,
  selectLayersStatus,
  selectLearnEvaluations,
  selectLearnGenerate,
  selectLearnGenerations,
  selectLearnLoadMixing,
  selectLearnMixing,
  selectLearnOptimize,
  selectLearnRuns,
  type LearnDemoInfo,
  type LearnPoint,
} from '../../store/index.ts';
import { Heatmap } from '../Heatmap.tsx';
import { SERIES_COLORS } from '../Perplexity.tsx';
import { useStudio } from '../store.tsx';
import { fmt, mean, parseValues, pct, promptsOf, usePoint, useReferences, useRun, type Ppl } from './data.ts';
import type { ChartSpec, GenerationModel, LearnStep } from './steps.ts';

/**
 * The chart of each step, with its text alternative: a sentence saying what the chart shows
 * (computed from the measured numbers) and the numbers as a table. `data-state` on the figure
 * is a digest of what is drawn (the e2e checks that a control changes it); cells carry
 * `data-value` with the unrounded number.
 */

export interface ChartProps {
  step: LearnStep;
  params: Record<string, string>;
  demo: LearnDemoInfo;
  ready: boolean;
  big: boolean;
  /** The learner's guess once revealed (predict-then-reveal steps). */
  guess: string | null;
  /** Whether the chart may be seen yet (a prediction pending hides it but measuring goes on). */
  revealed: boolean;
}

/** Tooltip rows in the text colour: recharts writes each in its series colour, too pale on white to read (axe: color-contrast). */
const TOOLTIP_ITEM = { color: '#111' };

const colourOf = (demo: LearnDemoInfo, id: string): string => SERIES_COLORS[Math.max(0, demo.distributions.findIndex((d) => d.id === id)) % SERIES_COLORS.length]!;

function Figure({
  title,
  finding,
  state,
  children,
  table,
  verdict,
  revealed,
  after,
  accessible = false,
}: {
  title: string;
  finding: string;
  state: unknown;
  children: ReactNode;
  table: ReactNode;
  verdict?: string | null;
  revealed: boolean;
  /** Shown after the chart, for everyone (the chart itself is described by the caption). */
  after?: ReactNode;
  /** The chart is accessible on its own (the heat map: labelled, keyboard-reachable cells and a table view), so it is not hidden from assistive technology. */
  accessible?: boolean;
}) {
  return (
    <figure className="learn-figure" data-testid="learn-chart" data-state={JSON.stringify(state)} hidden={!revealed}>
      <div className="learn-figure__chart" aria-hidden={accessible ? undefined : true}>
        {children}
      </div>
      {after}
      <figcaption>
        <p className="learn-finding" data-testid="learn-finding" aria-live="polite">
          <span className="visually-hidden">{title}: </span>
          {finding}
        </p>
        {verdict && (
          <p className="learn-verdict" data-testid="learn-verdict">
            {verdict}
          </p>
        )}
        <details className="learn-table">
          <summary>The numbers as a table</summary>
          {table}
        </details>
      </figcaption>
    </figure>
  );
}

function Cell({ v, digits = 3 }: { v: number | undefined; digits?: number }) {
  return (
    <td className="num" data-value={v ?? ''}>
      {fmt(v, digits)}
    </td>
  );
}

const height = (big: boolean): number => (big ? 420 : 280);
const round = (x: number | undefined): number | null => (x === undefined ? null : Math.round(x * 1e4) / 1e4);
const roundRow = (r: Ppl): Record<string, number | null> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)]));

/** The choice the data gives for a prediction, with a sentence. */
function verdictLine(guess: string | null, answer: string | undefined, label: (id: string) => string): string | null {
  if (guess === null) return null;
  if (answer === undefined) return `You predicted ${label(guess)}. Measuring…`;
  return guess === answer ? `You predicted ${label(guess)} — right.` : `You predicted ${label(guess)}; the measurement says ${label(answer)}.`;
}

// ---- step: a base and four fine-tunes -----------------------------------------------------------
function ModelsChart({ params, demo, big, revealed }: ChartProps) {
  const refs = useReferences();
  const model = params.model ?? 'base';
  const row = model === 'base' ? refs.base : (refs.tunes[model] ?? {});
  const name = model === 'base' ? 'the base' : `the ${model} fine-tune`;
  const data = demo.distributions.map((d) => ({ text: d.id, model: row[d.id], base: refs.base[d.id] }));
  const known = data.filter((r) => r.model !== undefined && r.base !== undefined);
  let finding: string;
  if (known.length < data.length) finding = `Measuring ${name} on the four texts…`;
  else if (model === 'base') {
    const sorted = [...data].sort((a, b) => a.model! - b.model!);
    finding = `The base finds ${sorted[0]!.text} the easiest (perplexity ${fmt(sorted[0]!.model)}) and ${sorted.at(-1)!.text} the hardest (${fmt(sorted.at(-1)!.model)}).`;
  } else {
    const changes = data.map((r) => ({ text: r.text, r: r.model! / r.base! - 1 })).sort((a, b) => a.r - b.r);
    const worse = changes.filter((c) => c.r > 0).map((c) => c.text);
    finding = `Compared with the base, ${name} is ${pct(1, 1 + changes[0]!.r)} on ${changes[0]!.text}; ${worse.length ? `it got worse on ${worse.join(', ')}` : 'it is no worse on any text'}.`;
  }
  return (
    <Figure
      title="Perplexity per text"
      finding={finding}
      revealed={revealed}
      state={{ model, values: data.map((r) => round(r.model)) }}
      table={
        <table className="table">
          <thead>
            <tr>
              <th scope="col">text</th>
              <th scope="col">{name}</th>
              <th scope="col">the base</th>
              <th scope="col">change</th>
            </tr>
          </thead>
          <tbody>
            {data.map((r) => (
              <tr key={r.text} data-testid="learn-row" data-name={r.text}>
                <th scope="row">{r.text}</th>
                <Cell v={r.model} />
                <Cell v={r.base} />
                <td className="num">{pct(r.base, r.model)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      }
    >
      <ResponsiveContainer width="100%" height={height(big)}>
        <ComposedChart accessibilityLayer={false} data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="text" />
          <YAxis width={56} tickFormatter={(x: number) => x.toFixed(0)} label={{ value: 'perplexity', angle: -90, position: 'insideLeft' }} />
          <Tooltip formatter={(x) => (typeof x === 'number' ? x.toFixed(3) : String(x))} itemStyle={TOOLTIP_ITEM} />
          <Legend />
          <Bar dataKey="model" name={name} fill={model === 'base' ? '#6b7280' : colourOf(demo, model)} isAnimationActive={false} />
          <Scatter dataKey="base" name="the base" fill="#111" shape="diamond" isAnimationActive={false} />
        </ComposedChart>
      </ResponsiveContainer>
    </Figure>
  );
}

// ---- step: what a fine-tune changes --------------------------------------------------------------
function LayersChart({ params, demo, ready, big, revealed }: ChartProps) {
  const layers = useStudio(selectLayers);
  const status = useStudio(selectLayersStatus);
  const analyze = useStudio(selectAnalyzeLayers);
  useEffect(() => {
    if (ready && !layers && status === 'idle') void analyze();
  }, [ready, layers, status, analyze]);
  const v = params.v ?? demo.distributions[0]!.id;
  const modelOf = (dist: string): number => (layers ? layers.models.findIndex((m) => m === `ft-${dist}`) : -1);
  const data = layers ? layers.groups.map((g, j) => ({ layer: g.replace('layer ', 'L'), ...Object.fromEntries(demo.distributions.map((d) => [d.id, layers.normalised[modelOf(d.id)]?.[j]])) })) : [];
  let finding = 'Measuring how far each fine-tune moved from the base…';
  let state: unknown = { v };
  const i = modelOf(v);
  if (layers && i >= 0) {
    const row = layers.distance[i]!;
    const top = row.reduce((best, d, j) => (d > row[best]! ? j : best), 0);
    const total = Math.sqrt(row.reduce((s, d) => s + d * d, 0));
    const totalBase = Math.sqrt(layers.baseNorm.reduce((s, d) => s + d * d, 0));
    const rel = row.map((d, j) => (layers.baseNorm[j]! > 0 ? d / layers.baseNorm[j]! : 0));
    const topRel = rel.reduce((best, d, j) => (d > rel[best]! ? j : best), 0);
    finding =
      `The ${v} fine-tune moved most in ${layers.groups[top]} (the longest Δ); relative to the weights there, ${layers.groups[topRel]} moved most (${(rel[topRel]! * 100).toFixed(2)}%). ` +
      `In all, ‖Δ‖ is ${(100 * (total / totalBase)).toFixed(2)}% of ‖θ‖: a small step from the base.`;
    state = { v, top: layers.groups[top], rel: round(total / totalBase) };
  }
  return (
    <Figure
      title="Distance from the base per layer"
      finding={finding}
      revealed={revealed}
      state={state}
      table={
        layers && (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">layer</th>
                {demo.distributions.map((d) => (
                  <th key={d.id} scope="col">
                    ‖Δ‖ {d.id}
                  </th>
                ))}
                <th scope="col">‖θ‖ base</th>
                <th scope="col">‖Δ‖ / ‖θ‖ ({v})</th>
              </tr>
            </thead>
            <tbody>
              {layers.groups.map((g, j) => (
                <tr key={g}>
                  <th scope="row">{g}</th>
                  {demo.distributions.map((d) => (
                    <Cell key={d.id} v={layers.distance[modelOf(d.id)]?.[j]} digits={4} />
                  ))}
                  <Cell v={layers.baseNorm[j]} digits={2} />
                  <td className="num">{i >= 0 && layers.baseNorm[j]! > 0 ? `${((100 * layers.distance[i]![j]!) / layers.baseNorm[j]!).toFixed(2)}%` : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      }
    >
      <ResponsiveContainer width="100%" height={height(big)}>
        <LineChart accessibilityLayer={false} data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="layer" />
          <YAxis width={56} domain={[0, 1]} ticks={[0, 0.25, 0.5, 0.75, 1]} tickFormatter={(x: number) => x.toFixed(2)} label={{ value: '‖Δ‖ / largest', angle: -90, position: 'insideLeft' }} />
          <Tooltip formatter={(x) => (typeof x === 'number' ? x.toFixed(3) : String(x))} itemStyle={TOOLTIP_ITEM} />
          <Legend />
          {demo.distributions.map((d) => (
            <Line key={d.id} dataKey={d.id} stroke={colourOf(demo, d.id)} strokeWidth={d.id === v ? 5 : 1.5} strokeOpacity={d.id === v ? 1 : 0.45} dot={d.id === v} isAnimationActive={false} />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </Figure>
  );
}

// ---- steps: adding and negating one vector -------------------------------------------------------
function ChangeChart({ step, params, demo, ready, big, guess, revealed }: ChartProps) {
  const refs = useReferences();
  const v = params.v ?? demo.distributions[0]!.id;
  const w = Number(params.w ?? 1);
  const point = usePoint({ [v]: w }, ready);
  const merged: Ppl = point?.ppl ?? {};
  const data = demo.distributions.map((d) => ({ text: d.id, base: refs.base[d.id], merged: merged[d.id], tuned: refs.tunes[v]?.[d.id] }));
  const complete = data.every((r) => r.base !== undefined && r.merged !== undefined);
  const changes = complete ? data.map((r) => ({ text: r.text, r: r.merged! / r.base! - 1 })) : [];
  const drop = changes.length ? [...changes].sort((a, b) => a.r - b.r)[0] : undefined;
  const rise = changes.length ? [...changes].sort((a, b) => b.r - a.r)[0] : undefined;
  const label = `θ(base) ${w < 0 ? '−' : '+'} ${Math.abs(w)}·Δ(${v})`;
  let finding = `Measuring ${label}…`;
  if (complete) {
    finding =
      w >= 0
        ? `${label}: ${drop!.text} changes most (${pct(1, 1 + drop!.r)}); ${changes.filter((c) => c.text !== drop!.text).map((c) => `${c.text} ${pct(1, 1 + c.r)}`).join(', ')}.`
        : `${label}: ${rise!.text} gets hardest (${pct(1, 1 + rise!.r)}); ${changes.filter((c) => c.text !== rise!.text).map((c) => `${c.text} ${pct(1, 1 + c.r)}`).join(', ')}.`;
  }
  const answer = step.predict?.answer === 'largest-rise' ? rise?.text : drop?.text;
  return (
    <Figure
      title="Base and merge per text"
      finding={finding}
      revealed={revealed}
      verdict={step.predict ? verdictLine(guess, answer, (x) => x) : null}
      state={{ v, w, merged: roundRow(merged) }}
      table={
        <table className="table">
          <thead>
            <tr>
              <th scope="col">text</th>
              <th scope="col">the base</th>
              <th scope="col">{label}</th>
              <th scope="col">change</th>
              <th scope="col">the {v} fine-tune itself</th>
            </tr>
          </thead>
          <tbody>
            {data.map((r) => (
              <tr key={r.text} data-testid="learn-row" data-name={r.text}>
                <th scope="row">{r.text}</th>
                <Cell v={r.base} />
                <Cell v={r.merged} />
                <td className="num">{pct(r.base, r.merged)}</td>
                <Cell v={r.tuned} />
              </tr>
            ))}
          </tbody>
        </table>
      }
    >
      <ResponsiveContainer width="100%" height={height(big)}>
        <BarChart accessibilityLayer={false} data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="text" />
          <YAxis width={56} tickFormatter={(x: number) => x.toFixed(0)} label={{ value: 'perplexity', angle: -90, position: 'insideLeft' }} />
          <Tooltip formatter={(x) => (typeof x === 'number' ? x.toFixed(3) : String(x))} itemStyle={TOOLTIP_ITEM} />
          <Legend />
          <Bar dataKey="base" name="the base" fill="#9ca3af" isAnimationActive={false} />
          <Bar dataKey="merged" name={label} fill={colourOf(demo, v)} isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </Figure>
  );
}

// ---- step: scaling one vector ---------------------------------------------------------------------
function ScaleChart({ step, params, demo, ready, big, guess, revealed }: ChartProps) {
  const spec = step.chart as Extract<ChartSpec, { kind: 'scale' }>;
  const refs = useReferences();
  const v = params.v ?? demo.distributions[0]!.id;
  const w = Number(params.w ?? 1);
  // 0 and 1 always (the base and the fine-tune), and 2: the prediction asks about it.
  const values = useMemo(() => [...new Set([...parseValues(params.values, spec.values), 0, 1, 2])].sort((a, b) => a - b), [params.values, spec.values]);
  // ω = 0 is the base and ω = 1 the fine-tune itself: their own measured perplexities.
  const todo = values.filter((x) => x !== 0 && x !== 1);
  const run = useRun(`scale:${v}:${todo.join(',')}`, todo.map((x) => ({ [v]: x })), ready);
  const current = usePoint(w === 0 || w === 1 || todo.includes(w) ? null : { [v]: w }, ready);
  const at = (x: number): Ppl => (x === 0 ? refs.base : x === 1 ? (refs.tunes[v] ?? {}) : (run?.points.find((p) => p.weights[v] === x)?.ppl ?? (current && current.weights[v] === x ? current.ppl : {})));
  const data = values.map((x) => ({ w: x, ...at(x) }));
  const own = data.map((r) => ({ w: r.w, p: (r as Record<string, number | undefined>)[v] }));
  const known = own.filter((r) => r.p !== undefined);
  const best = known.length === own.length ? known.reduce((a, b) => (b.p! < a.p! ? b : a)) : undefined;
  const now = at(w);
  const p1 = refs.tunes[v]?.[v];
  const p2 = own.find((r) => r.w === 2)?.p;
  const answer = p1 !== undefined && p2 !== undefined ? (p2 < p1 ? 'easier' : 'harder') : undefined;
  const finding = best
    ? `The ${v} text is lowest at ω = ${best.w} (perplexity ${fmt(best.p)})${best.w < Math.max(...values) ? `; beyond it, it rises again — overshooting` : ''}. At ω = ${w}: ${demo.distributions.map((d) => `${d.id} ${fmt(now[d.id])}`).join(', ')}.`
    : `Measuring the ${v} vector at ω = ${values.join(', ')}…`;
  return (
    <Figure
      title={`Perplexity as ω of ${v} grows`}
      finding={finding}
      revealed={revealed}
      verdict={step.predict ? verdictLine(guess, answer, (x) => x) : null}
      state={{ v, w, now: roundRow(now), curve: own.map((r) => round(r.p)) }}
      table={
        <table className="table">
          <thead>
            <tr>
              <th scope="col">ω ({v})</th>
              {demo.distributions.map((d) => (
                <th key={d.id} scope="col">
                  {d.id}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {data.map((r) => (
              <tr key={r.w} data-testid="learn-row" data-name={String(r.w)} aria-current={r.w === w ? 'true' : undefined}>
                <th scope="row">
                  {r.w}
                  {r.w === 0 ? ' (the base)' : r.w === 1 ? ` (the ${v} fine-tune)` : ''}
                </th>
                {demo.distributions.map((d) => (
                  <Cell key={d.id} v={(r as Record<string, number | undefined>)[d.id]} />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      }
    >
      <ResponsiveContainer width="100%" height={height(big)}>
        <LineChart accessibilityLayer={false} data={data} margin={{ top: 20, right: 16, bottom: 16, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="w" type="number" domain={[Math.min(...values), Math.max(...values)]} ticks={values} label={{ value: `ω (${v})`, position: 'insideBottom', offset: -10 }} />
          <YAxis width={56} scale="log" domain={['auto', 'auto']} tickFormatter={(x: number) => x.toFixed(0)} />
          <Tooltip formatter={(x) => (typeof x === 'number' ? x.toFixed(3) : String(x))} itemStyle={TOOLTIP_ITEM} />
          <Legend verticalAlign="top" />
          <ReferenceLine x={w} stroke="#111" strokeDasharray="4 3" label={{ value: `ω = ${w}`, position: w < (Math.min(...values) + Math.max(...values)) / 2 ? 'insideTopLeft' : 'insideTopRight' }} />
          {demo.distributions.map((d) => (
            <Line key={d.id} dataKey={d.id} stroke={colourOf(demo, d.id)} strokeWidth={d.id === v ? 4 : 2} dot isAnimationActive={false} connectNulls />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </Figure>
  );
}

// ---- step: two vectors ------------------------------------------------------------------------------
function HeatmapChart({ step, params, ready, revealed }: ChartProps) {
  const spec = step.chart as Extract<ChartSpec, { kind: 'heatmap' }>;
  const values = useMemo(() => parseValues(params.values, spec.values), [params.values, spec.values]);
  const { x, y } = spec;
  const points = useMemo(() => values.flatMap((b) => values.map((a) => ({ [x]: a, [y]: b }))), [values, x, y]);
  const run = useRun(`heat:${x}:${y}:${values.join(',')}`, points, ready);
  const colour = params.colour ?? 'mean';
  const valueOf = (p: LearnPoint): number => (colour === 'mean' ? p.mean : p.ppl[colour]!);
  const cells = (run?.points ?? []).map((p) => ({ x: p.weights[x]!, y: p.weights[y]!, value: valueOf(p) }));
  const done = run?.status === 'done' && cells.length === points.length;
  const best = cells.length ? cells.reduce((a, b) => (b.value < a.value ? b : a)) : undefined;
  const ones = cells.find((c) => c.x === 1 && c.y === 1);
  const what = colour === 'mean' ? 'mean perplexity of the four texts' : `${colour} perplexity`;
  const finding = done
    ? `The lowest ${what} is at ω(${x}) = ${best!.x}, ω(${y}) = ${best!.y}: ${fmt(best!.value)}${ones ? `; at (1, 1) it is ${fmt(ones.value)}` : ''}.`
    : `Measuring ${cells.length} of ${points.length} merges…`;
  return (
    <Figure
      title={`The ${what} over ω(${x}) and ω(${y})`}
      finding={finding}
      revealed={revealed}
      accessible
      state={{ colour, cells: cells.map((c) => round(c.value)) }}
      table={
        <table className="table">
          <thead>
            <tr>
              <th scope="col">
                ω({y}) \ ω({x})
              </th>
              {values.map((a) => (
                <th key={a} scope="col">
                  {a}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {[...values].reverse().map((b) => (
              <tr key={b}>
                <th scope="row">{b}</th>
                {values.map((a) => (
                  <Cell key={a} v={cells.find((c) => c.x === a && c.y === b)?.value} />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      }
    >
      <Heatmap xs={values} ys={values} cells={cells} xLabel={`ω ${x}`} yLabel={`ω ${y}`} format={(v) => v.toFixed(3)} testId="learn-heat" />
    </Figure>
  );
}

// ---- step: choosing weights ------------------------------------------------------------------------------
/** The best merge of the learner's search (optimiser, else grid), if any. */
export function useSearchBest(): LearnPoint | undefined {
  const runs = useStudio(selectLearnRuns);
  const all = Object.entries(runs)
    .filter(([k]) => k.startsWith('grid:') || k.startsWith('opt:'))
    .flatMap(([, r]) => r.points);
  return all.length ? all.reduce((a, b) => (b.mean < a.mean ? b : a)) : undefined;
}

function SearchChart({ step, params, demo, ready, big, revealed }: ChartProps) {
  const spec = step.chart as Extract<ChartSpec, { kind: 'search' }>;
  const ids = useMemo(() => demo.distributions.map((d) => d.id), [demo]);
  const values = useMemo(() => parseValues(params.values, spec.values), [params.values, spec.values]);
  const budget = Math.max(1, Math.round(Number(params.budget ?? spec.budget)));
  const gridKey = `grid:${values.join(',')}`;
  const points = useMemo(() => gridPoints({ axes: ids.map(() => ({ values })), sumToOne: false }).map((p) => Object.fromEntries(ids.map((id, i) => [id, p[i]!]))), [ids, values]);
  const grid = useRun(gridKey, points, ready);
  const gridBest = grid?.status === 'done' && grid.points.length ? grid.points.reduce((a, b) => (b.mean < a.mean ? b : a)) : undefined;
  const optKey = gridBest ? `opt:${gridBest.key}:${budget}` : null;
  const runs = useStudio(selectLearnRuns);
  const optimize = useStudio(selectLearnOptimize);
  const opt = optKey ? runs[optKey] : undefined;
  useEffect(() => {
    if (ready && optKey && gridBest && !opt) void optimize(optKey, gridBest.weights, budget);
  }, [ready, optKey, gridBest, opt, optimize, budget]);
  const optBest = opt?.points.length ? opt.points.reduce((a, b) => (b.mean < a.mean ? b : a)) : undefined;
  const trace = [...(grid?.points ?? []).map((p) => ({ method: 'grid', p })), ...(opt?.points ?? []).map((p) => ({ method: 'optimiser', p }))];
  let bestSoFar = Infinity;
  const data = trace.map((t, i) => {
    bestSoFar = Math.min(bestSoFar, t.p.mean);
    return { n: i + 1, grid: t.method === 'grid' ? t.p.mean : undefined, optimiser: t.method === 'optimiser' ? t.p.mean : undefined, best: bestSoFar };
  });
  const w = (p: LearnPoint | undefined): string => (p ? `(${ids.map((id) => p.weights[id]).join(', ')})` : '…');
  const firstBetter = gridBest && opt ? opt.points.findIndex((p) => p.mean < gridBest.mean - 1e-9) : -1;
  const finding = !gridBest
    ? `The grid: measuring ${grid?.points.length ?? 0} of ${points.length} merges…`
    : opt?.status !== 'done'
      ? `The grid's best of ${points.length} merges: mean ${fmt(gridBest.mean)} at ω = ${w(gridBest)}. The optimiser: ${opt?.points.length ?? 0} of at most ${budget} merges…`
      : `The grid measured ${points.length} merges; its best: mean ${fmt(gridBest.mean)} at ω = ${w(gridBest)}. The optimiser measured ${opt.points.length} more` +
        (firstBetter >= 0 ? ` and first beat the grid at its merge ${firstBetter + 1}; its best: ${fmt(optBest!.mean)} at ω = ${w(optBest)}.` : ' and did not beat the grid.');
  return (
    <Figure
      title="Mean perplexity of every merge tried"
      finding={finding}
      revealed={revealed}
      state={{ budget, grid: grid?.points.length ?? 0, opt: opt?.points.length ?? 0, best: round(optBest?.mean ?? gridBest?.mean) }}
      table={
        <table className="table">
          <thead>
            <tr>
              <th scope="col">method</th>
              <th scope="col">merges measured</th>
              <th scope="col">best mean perplexity</th>
              <th scope="col">at ω ({ids.join(', ')})</th>
            </tr>
          </thead>
          <tbody>
            <tr data-testid="learn-row" data-name="grid">
              <th scope="row">grid ({values.join(', ')} for each)</th>
              <td className="num">{grid?.points.length ?? 0}</td>
              <Cell v={gridBest?.mean} />
              <td>{w(gridBest)}</td>
            </tr>
            <tr data-testid="learn-row" data-name="optimiser">
              <th scope="row">Nelder–Mead from the grid’s best</th>
              <td className="num">{opt?.points.length ?? 0}</td>
              <Cell v={optBest?.mean} />
              <td>{w(optBest)}</td>
            </tr>
          </tbody>
        </table>
      }
    >
      <ResponsiveContainer width="100%" height={height(big)}>
        <ComposedChart accessibilityLayer={false} data={data} margin={{ top: 8, right: 8, bottom: 12, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="n" type="number" domain={[1, Math.max(2, points.length + budget)]} label={{ value: 'merges measured', position: 'insideBottom', offset: -6 }} />
          <YAxis width={56} domain={['auto', 'auto']} tickFormatter={(x: number) => x.toFixed(1)} />
          <Tooltip formatter={(x) => (typeof x === 'number' ? x.toFixed(3) : String(x))} itemStyle={TOOLTIP_ITEM} />
          <Legend verticalAlign="top" />
          <Scatter dataKey="grid" name="grid" fill={SERIES_COLORS[0]} isAnimationActive={false} />
          <Scatter dataKey="optimiser" name="optimiser" fill={SERIES_COLORS[1]} isAnimationActive={false} />
          <Line dataKey="best" name="best so far" stroke="#111" dot={false} type="stepAfter" isAnimationActive={false} />
        </ComposedChart>
      </ResponsiveContainer>
    </Figure>
  );
}

// ---- step: DEM versus data mixing ---------------------------------------------------------------------
interface CostRow {
  seconds: number;
  tokens: number;
  runs: number;
}

function costs(demo: LearnDemoInfo): { dem: CostRow; mixing: CostRow } | null {
  const cks = demo.manifest.checkpoints;
  const fts = cks.filter((c) => c.role === 'fine-tune');
  const mix = cks.find((c) => c.role === 'mixing');
  if (!mix || fts.some((c) => c.seconds === undefined)) return null;
  return {
    dem: { seconds: fts.reduce((n, c) => n + (c.seconds ?? 0), 0), tokens: fts.reduce((n, c) => n + (c.tokensSeen ?? 0), 0), runs: fts.length },
    mixing: { seconds: mix.seconds ?? 0, tokens: mix.tokensSeen ?? 0, runs: 1 },
  };
}

/** Mean task score of data mixing and of DEM's perplexity-chosen merge, as make-demo-tasks measured them. */
function taskScores(demo: LearnDemoInfo): { dem: number | undefined; mixing: number | undefined } | null {
  const rows = demo.manifest.tasks?.table?.rows;
  if (!rows) return null;
  return { dem: rows.find((r) => r.kind === 'dem')?.meanScore, mixing: rows.find((r) => r.kind === 'mixing')?.meanScore };
}

function MixingChart({ params, demo, ready, big, guess, revealed }: ChartProps) {
  const refs = useReferences();
  const mixing = useStudio(selectLearnMixing);
  const loadMixing = useStudio(selectLearnLoadMixing);
  const evaluations = useStudio(selectLearnEvaluations);
  useEffect(() => {
    if (ready) void loadMixing();
  }, [ready, loadMixing]);
  const searchBest = useSearchBest();
  const dem = params.dem ?? 'best';
  const ids = demo.distributions.map((d) => d.id);
  const weights: Record<string, number> | null =
    dem === 'ones' ? Object.fromEntries(ids.map((id) => [id, 1])) : dem === 'search' ? (searchBest?.weights ?? null) : (demo.manifest.evaluation?.merges?.best?.weights ?? null);
  const point = usePoint(weights, ready);
  const label = weights ? `DEM (${ids.map((id) => weights[id] ?? 0).join(', ')})` : 'DEM';
  const data = demo.distributions.map((d) => ({ text: d.id, base: refs.base[d.id], mixing: mixing?.[d.id], dem: point?.ppl[d.id] }));
  const mDem = mean(data.map((r) => r.dem));
  const mMix = mean(data.map((r) => r.mixing));
  const mBase = mean(data.map((r) => r.base));
  const rows = [...data, { text: 'mean', base: mBase, mixing: mMix, dem: mDem }];
  const answer = mDem !== undefined && mMix !== undefined ? (mDem < mMix ? 'dem' : 'mixing') : undefined;
  const c = costs(demo);
  const scores = taskScores(demo);
  let finding = `Measuring data mixing and ${label}…`;
  if (answer) {
    const demWins = data.filter((r) => r.dem! < r.mixing!).map((r) => r.text);
    const mixWins = data.filter((r) => r.dem! >= r.mixing!).map((r) => r.text);
    finding =
      `On the mean of the four texts, ${answer === 'dem' ? `${label} wins: ${fmt(mDem)} against data mixing's ${fmt(mMix)}` : `data mixing wins: ${fmt(mMix)} against ${label}'s ${fmt(mDem)}`} (the base: ${fmt(mBase)}). ` +
      `DEM is better on ${demWins.length ? demWins.join(', ') : 'no text'}; mixing on ${mixWins.length ? mixWins.join(', ') : 'no text'}.`;
  }
  return (
    <Figure
      title="Base, data mixing and DEM per text"
      finding={finding}
      revealed={revealed}
      verdict={verdictLine(guess, answer, (x) => (x === 'dem' ? 'the DEM merge' : 'data mixing'))}
      after={
        c && (
        <table className="table learn-costs" data-testid="learn-costs">
          <caption>What each cost to train after the shared base, and how each scored on the demo’s tasks (this demo’s manifest)</caption>
          <thead>
            <tr>
              <th scope="col">approach</th>
              <th scope="col">training runs</th>
              <th scope="col">tokens trained on</th>
              <th scope="col">training time</th>
              <th scope="col">each further candidate</th>
              {scores && <th scope="col">mean task score (DEM: the merge make-demo chose by perplexity)</th>}
            </tr>
          </thead>
          <tbody>
            <tr>
              <th scope="row">DEM</th>
              <td className="num">{c.dem.runs} fine-tunes</td>
              <td className="num">{c.dem.tokens.toLocaleString('en')}</td>
              <td className="num">{(c.dem.seconds / 60).toFixed(0)} min</td>
              <td>one merge and measurement{point && point.ms > 0 ? ` (${(point.ms / 1000).toFixed(1)} s here)` : ''}; {evaluations} measured in this lesson</td>
              {scores && (
                <td className="num" data-testid="learn-score-dem">
                  {fmt(scores.dem, 3)}
                </td>
              )}
            </tr>
            <tr>
              <th scope="row">data mixing</th>
              <td className="num">{c.mixing.runs}</td>
              <td className="num">{c.mixing.tokens.toLocaleString('en')}</td>
              <td className="num">{(c.mixing.seconds / 60).toFixed(0)} min</td>
              <td>another training run from the base</td>
              {scores && (
                <td className="num" data-testid="learn-score-mixing">
                  {fmt(scores.mixing, 3)}
                </td>
              )}
            </tr>
          </tbody>
        </table>
        )
      }
      state={{ dem, values: rows.map((r) => [round(r.dem), round(r.mixing)]) }}
      table={
        <>
          <table className="table">
            <thead>
              <tr>
                <th scope="col">text</th>
                <th scope="col">the base</th>
                <th scope="col">data mixing</th>
                <th scope="col">{label}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.text} data-testid="learn-row" data-name={r.text}>
                  <th scope="row">{r.text}</th>
                  <Cell v={r.base} />
                  <Cell v={r.mixing} />
                  <Cell v={r.dem} />
                </tr>
              ))}
            </tbody>
          </table>
        </>
      }
    >
      <ResponsiveContainer width="100%" height={height(big)}>
        <BarChart accessibilityLayer={false} data={rows} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="text" />
          <YAxis width={56} tickFormatter={(x: number) => x.toFixed(0)} label={{ value: 'perplexity', angle: -90, position: 'insideLeft' }} />
          <Tooltip formatter={(x) => (typeof x === 'number' ? x.toFixed(3) : String(x))} itemStyle={TOOLTIP_ITEM} />
          <Legend />
          <Bar dataKey="base" name="the base" fill="#9ca3af" isAnimationActive={false} />
          <Bar dataKey="mixing" name="data mixing" fill={SERIES_COLORS[1]} isAnimationActive={false} />
          <Bar dataKey="dem" name={label} fill={SERIES_COLORS[0]} isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </Figure>
  );
}

// ---- step: generation ---------------------------------------------------------------------------------------
function GenerationsChart({ step, params, demo, ready }: ChartProps) {
  const spec = step.chart as Extract<ChartSpec, { kind: 'generations' }>;
  const generate = useStudio(selectLearnGenerate);
  const generations = useStudio(selectLearnGenerations);
  const ids = demo.distributions.map((d) => d.id);
  const prompts = promptsOf(demo);
  const dist = params.prompt && ids.includes(params.prompt) ? params.prompt : ids[0]!;
  const prompt = prompts[dist] ?? '';
  const sampling = demo.manifest.evaluation?.samples?.settings ?? { temperature: 0.8, topK: 40, seed: 1 };
  const settings = { temperature: sampling.temperature, topK: sampling.topK, seed: sampling.seed, maxTokens: spec.maxTokens };
  const best = demo.manifest.evaluation?.merges?.best?.weights;
  const models = spec.models.map((m: GenerationModel) => {
    const weights: Record<string, number> | 'mixing' = m === 'base' ? {} : m === 'vector' ? { [dist]: 1 } : m === 'best' ? (best ?? {}) : 'mixing';
    const label = m === 'base' ? 'the base' : m === 'vector' ? `the base + Δ(${dist}) — the ${dist} fine-tune` : m === 'best' ? `DEM (${ids.map((id) => best?.[id] ?? 0).join(', ')})` : 'data mixing';
    const key = `${m}:${JSON.stringify(weights)}:${prompt}`;
    return { m, weights, label, key };
  });
  useEffect(() => {
    if (!ready || !prompt) return;
    // One after another: the Worker runs them in turn anyway, and the first shows up sooner.
    void (async () => {
      for (const x of models) await generate(x.key, x.weights, prompt, settings);
    })();
    // `models` is derived from `prompt`, `dist` and the manifest.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ready, prompt, dist, generate]);
  const texts = models.map((x) => generations[x.key]);
  const done = texts.every((t) => t?.status === 'done');
  return (
    <figure className="learn-figure" data-testid="learn-chart" data-state={JSON.stringify({ prompt, texts: texts.map((t) => t?.text ?? null) })}>
      <div className="learn-gens">
        {models.map((x, i) => (
          <section key={x.key} className="learn-gen" aria-labelledby={`gen-${i}`} data-testid="learn-generation" data-status={texts[i]?.status ?? 'waiting'}>
            <h3 id={`gen-${i}`} className="learn-gen__title">
              {x.label}
            </h3>
            <p className="learn-gen__text">
              <strong>{prompt}</strong>
              {texts[i]?.status === 'done' ? texts[i]!.text : texts[i]?.status === 'failed' ? ' (failed)' : ' …'}
            </p>
          </section>
        ))}
      </div>
      <figcaption>
        <p className="learn-finding" data-testid="learn-finding" aria-live="polite">
          {!prompt
            ? `Neither the demo nor the lesson has a prompt for ${dist}.`
            : done
            ? `The prompt “${prompt}” continued by ${models.length} models: sampling at temperature ${settings.temperature}, the ${settings.topK} likeliest tokens, seed ${settings.seed}, ${settings.maxTokens} tokens.`
            : 'Generating…'}
        </p>
      </figcaption>
    </figure>
  );
}

export function StepChart(props: ChartProps) {
  switch (props.step.chart.kind) {
    case 'models':
      return <ModelsChart {...props} />;
    case 'layers':
      return <LayersChart {...props} />;
    case 'change':
      return <ChangeChart {...props} />;
    case 'scale':
      return <ScaleChart {...props} />;
    case 'heatmap':
      return <HeatmapChart {...props} />;
    case 'search':
      return <SearchChart {...props} />;
    case 'mixing':
      return <MixingChart {...props} />;
    case 'generations':
      return <GenerationsChart {...props} />;
  }
}
