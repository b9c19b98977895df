import { useId, useMemo, useState } from 'react';
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Scatter, ScatterChart, Tooltip, XAxis, YAxis, Legend, ZAxis } from 'recharts';
import { rankCorrelation } from '../engine/index.ts';
import {
  selectApplyRow,
  selectCancelJob,
  selectCheckpoints,
  selectJob,
  selectObjectiveWeights,
  selectRunGrid,
  selectRunOptimizer,
  selectSearchCoefIds,
  selectSearchKind,
  selectSearchRows,
  selectSearchTarget,
  selectSetObjectiveWeight,
  selectSetSearchTarget,
  selectValidationSets,
  type SearchRow,
  type SearchTarget,
} from '../store/index.ts';
import { formatEta, formatPpl, formatScore } from './format.ts';
import { useStudio } from './store.tsx';
import { TableDownloads } from './TableDownloads.tsx';
import { searchTable } from './tables.ts';

/**
 * Coefficient search: the paper's grid (values per coefficient by min/max/step, optional Σ ω = 1)
 * or a budgeted Nelder–Mead, minimising the (weighted) average perplexity or maximising the
 * (weighted) average task score. Progress with ETA, cancel, a sortable table whose rows can be
 * applied, the trace of the objective, and every searched merge's mean perplexity against its
 * mean task score with their rank correlation: does perplexity pick the best-scoring merge?
 */
const better = (target: SearchTarget) => (a: SearchRow, b: SearchRow): boolean =>
  target === 'task' ? (b.taskObjective ?? -Infinity) > (a.taskObjective ?? -Infinity) : b.objective < a.objective;

export function bestRow(rows: readonly SearchRow[], target: SearchTarget): SearchRow | undefined {
  const b = better(target);
  return rows.reduce<SearchRow | undefined>((x, y) => (!x || b(x, y) ? y : x), undefined);
}
export function SearchPanel() {
  const tunes = useStudio(selectCheckpoints).filter((c) => c.role === 'finetune' && c.status === 'ready' && !c.incompatible);
  const sets = useStudio(selectValidationSets).filter((v) => v.status === 'ready');
  const weights = useStudio(selectObjectiveWeights);
  const setWeight = useStudio(selectSetObjectiveWeight);
  const runGrid = useStudio(selectRunGrid);
  const runOpt = useStudio(selectRunOptimizer);
  const [axis, setAxis] = useState({ min: 0, max: 1, step: 0.5 });
  const [sumToOne, setSumToOne] = useState(false);
  const [budget, setBudget] = useState(20);
  const target = useStudio(selectSearchTarget);
  const setTarget = useStudio(selectSetSearchTarget);
  const job = useStudio(selectJob);
  const busy = job?.status === 'running';
  return (
    <section className="panel panel--wide" aria-labelledby="search-title" data-testid="search-panel">
      <h2 id="search-title" className="section-title">
        Search coefficients
      </h2>
      <div className="row">
        <label className="small">
          Optimise{' '}
          <select className="select" value={target} onChange={(e) => setTarget(e.currentTarget.value as SearchTarget)} data-testid="search-target">
            <option value="perplexity">perplexity (lowest)</option>
            <option value="task">task score (highest)</option>
          </select>
        </label>
        <span className="small">average over the sets, weighted</span>
        {sets.map((v) => (
          <label key={v.id} className="small">
            {v.name}{' '}
            <input
              type="number"
              className="input input--tiny num"
              min={0}
              step={0.5}
              value={weights[v.id] ?? 1}
              onChange={(e) => {
                const w = e.currentTarget.valueAsNumber;
                if (Number.isFinite(w) && w >= 0) setWeight(v.id, w);
              }}
              aria-label={`Objective weight of ${v.name}`}
            />
          </label>
        ))}
      </div>
      <div className="row">
        <strong className="small">Grid</strong>
        <label className="small">
          min <input type="number" className="input input--tiny num" step={0.1} value={axis.min} onChange={(e) => setAxis({ ...axis, min: e.currentTarget.valueAsNumber })} data-testid="grid-min" />
        </label>
        <label className="small">
          max <input type="number" className="input input--tiny num" step={0.1} value={axis.max} onChange={(e) => setAxis({ ...axis, max: e.currentTarget.valueAsNumber })} data-testid="grid-max" />
        </label>
        <label className="small">
          step <input type="number" className="input input--tiny num" step={0.05} min={0.01} value={axis.step} onChange={(e) => setAxis({ ...axis, step: e.currentTarget.valueAsNumber })} data-testid="grid-step" />
        </label>
        <label className="small">
          <input type="checkbox" checked={sumToOne} onChange={(e) => setSumToOne(e.currentTarget.checked)} data-testid="grid-sum" /> Σ ω = 1
        </label>
        <button
          type="button"
          className="button button--small button--primary"
          disabled={busy || tunes.length === 0}
          onClick={() => void runGrid({ axes: Object.fromEntries(tunes.map((t) => [t.id, axis])), sumToOne })}
          data-testid="grid-run"
        >
          Run grid
        </button>
        <strong className="small">Optimiser</strong>
        <label className="small">
          budget <input type="number" className="input input--tiny num" min={3} max={500} value={budget} onChange={(e) => setBudget(e.currentTarget.valueAsNumber)} data-testid="opt-budget" />
        </label>
        <button type="button" className="button button--small" disabled={busy || tunes.length === 0} onClick={() => void runOpt(budget)} data-testid="opt-run">
          Nelder–Mead
        </button>
      </div>
      <JobProgress />
      <Results />
      <PerplexityVsScore />
    </section>
  );
}

export function JobProgress() {
  const job = useStudio(selectJob);
  const cancel = useStudio(selectCancelJob);
  if (!job) return null;
  return (
    <div className="job" data-testid="job" data-status={job.status} data-kind={job.kind} role="status">
      <span className="small">
        {job.kind}: {job.status}
      </span>
      <progress max={job.total || 1} value={job.done} aria-label={`${job.kind} progress`} />
      <span className="num small" data-testid="job-count">
        {job.done}/{job.total}
      </span>
      <span className="num small job__eta">{job.status === 'running' ? `ETA ${formatEta(job.etaS)}` : ''}</span>
      {job.status === 'running' && (
        <button type="button" className="button button--small" onClick={cancel} data-testid="job-cancel">
          Cancel
        </button>
      )}
      {job.error && (
        <span className="card__error small" role="alert" data-testid="job-error">
          {job.error.message}
        </span>
      )}
    </div>
  );
}

type SortKey = 'id' | 'objective' | 'task' | `w${number}` | `p:${string}` | `s:${string}`;

function Results() {
  const rows = useStudio(selectSearchRows);
  const kind = useStudio(selectSearchKind);
  const coefIds = useStudio(selectSearchCoefIds);
  const checkpoints = useStudio(selectCheckpoints);
  const sets = useStudio(selectValidationSets).filter((v) => v.status === 'ready');
  const apply = useStudio(selectApplyRow);
  const target = useStudio(selectSearchTarget);
  const [sort, setSort] = useState<{ key: SortKey; asc: boolean }>({ key: 'objective', asc: true });
  const captionId = useId();
  const value = (r: SearchRow, key: SortKey): number =>
    key === 'id'
      ? r.id
      : key === 'objective'
        ? r.objective
        : key === 'task'
          ? (r.taskObjective ?? -Infinity)
          : key.startsWith('w')
            ? (r.weights[Number(key.slice(1))] ?? 0)
            : key.startsWith('s:')
              ? (r.scores?.[key.slice(2)] ?? -Infinity)
              : (r.ppls[key.slice(2)] ?? Infinity);
  const sorted = useMemo(() => [...rows].sort((a, b) => (value(a, sort.key) - value(b, sort.key)) * (sort.asc ? 1 : -1)), [rows, sort]);
  const best = bestRow(rows, target);
  const scoredSets = sets.filter((v) => rows.some((r) => r.scores?.[v.id] !== undefined));
  const withScores = scoredSets.length > 0;
  const metric = (r: SearchRow): number => (target === 'task' ? (r.taskObjective ?? NaN) : r.objective);
  const trace = rows.map((r, i) => {
    const seen = rows.slice(0, i + 1).map(metric);
    return { n: i + 1, objective: metric(r), best: target === 'task' ? Math.max(...seen) : Math.min(...seen) };
  });
  if (rows.length === 0) return null;
  const name = (id: string): string => checkpoints.find((c) => c.id === id)?.name ?? '(removed)';
  const header = (key: SortKey, label: string) => (
    <th scope="col" className="num" aria-sort={sort.key === key ? (sort.asc ? 'ascending' : 'descending') : 'none'}>
      <button type="button" className="sort" onClick={() => setSort((s) => ({ key, asc: s.key === key ? !s.asc : true }))}>
        {label}
        {sort.key === key ? (sort.asc ? ' ▲' : ' ▼') : ''}
      </button>
    </th>
  );
  return (
    <div className="results">
      <TableDownloads name={kind === 'grid' ? 'grid-search' : 'nelder-mead'} table={() => searchTable(rows, coefIds.map(name), sets)} testId="search-download" />
      {/* Focusable, so a table wider than its panel scrolls from the keyboard too. */}
      <div className="results__table" tabIndex={0} role="region" aria-label="Search results: the table (scrolls)">
        <table className="table" aria-describedby={captionId} data-testid="search-table">
          <caption id={captionId} className="small muted">
            {kind === 'grid' ? 'Grid' : 'Nelder–Mead'}: {rows.length} evaluations · best {target === 'task' ? 'task score' : 'perplexity objective'}{' '}
            <span className="num" data-testid="search-best">{target === 'task' ? formatScore(best?.taskObjective) : formatPpl(best?.objective)}</span>
          </caption>
          <thead>
            <tr>
              {header('id', '#')}
              {coefIds.map((id, i) => header(`w${i}`, `ω ${name(id)}`))}
              {sets.map((v) => header(`p:${v.id}`, v.name))}
              {header('objective', 'mean ppl')}
              {scoredSets.map((v) => header(`s:${v.id}`, `${v.name} score`))}
              {withScores && header('task', 'mean score')}
              <th scope="col">
                <span className="visually-hidden">Apply</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {sorted.map((r) => (
              <tr key={r.id} data-testid="search-row" data-best={r === best} data-weights={r.weights.join(',')}>
                <td className="num">{r.id}</td>
                {r.weights.map((w, i) => (
                  <td key={i} className="num">
                    {w.toFixed(2)}
                  </td>
                ))}
                {sets.map((v) => (
                  <td key={v.id} className="num" data-set={v.name} data-value={r.ppls[v.id] ?? ''}>
                    {formatPpl(r.ppls[v.id])}
                  </td>
                ))}
                <td className="num">{formatPpl(r.objective)}</td>
                {scoredSets.map((v) => (
                  <td key={v.id} className="num" data-score-set={v.name} data-value={r.scores?.[v.id] ?? ''}>
                    {formatScore(r.scores?.[v.id])}
                  </td>
                ))}
                {withScores && <td className="num">{formatScore(r.taskObjective)}</td>}
                <td>
                  <button type="button" className="button button--small" onClick={() => apply(r)} aria-label={`Apply row ${r.id}`} data-testid="search-apply">
                    Apply
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="chart" data-testid="search-trace">
        <ResponsiveContainer width="100%" height={200}>
          <LineChart data={trace} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="n" />
            <YAxis width={56} domain={['auto', 'auto']} tickFormatter={(x: number) => x.toFixed(1)} />
            <Tooltip formatter={(x) => (typeof x === 'number' ? x.toFixed(4) : String(x))} />
            <Legend />
            <Line dataKey="objective" name={target === 'task' ? 'task score' : 'mean perplexity'} stroke="#94a3b8" dot isAnimationActive={false} />
            <Line dataKey="best" name="best so far" stroke="#2456c7" dot={false} isAnimationActive={false} />
          </LineChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}

/**
 * Every searched merge as a point: mean validation perplexity (x) against mean task score (y),
 * with Spearman's ρ between them (negative: lower perplexity goes with higher scores, DEM's
 * premise) and how far the merge perplexity picks falls short of the best-scoring one.
 */
export function PerplexityVsScore() {
  const rows = useStudio(selectSearchRows).filter((r) => r.taskObjective !== undefined && Number.isFinite(r.taskObjective));
  if (rows.length < 2) return null;
  const rho = rankCorrelation(rows.map((r) => r.objective), rows.map((r) => r.taskObjective!));
  const chosen = bestRow(rows, 'perplexity')!;
  const top = bestRow(rows, 'task')!;
  const point = (r: SearchRow) => ({ ppl: r.objective, score: r.taskObjective!, id: r.id });
  const others = rows.filter((r) => r !== chosen && r !== top).map(point);
  return (
    <div className="correlation" data-testid="correlation" data-rho={Number.isFinite(rho) ? rho : ''} data-chosen={chosen.id} data-top={top.id}>
      <h3 className="subtitle">Perplexity against task score, {rows.length} searched merges</h3>
      <p className="small" data-testid="correlation-summary">
        Spearman ρ = <span className="num">{Number.isFinite(rho) ? rho.toFixed(3) : '—'}</span>
        {Number.isFinite(rho) ? (rho < 0 ? ' (lower perplexity, higher scores)' : ' (lower perplexity does not mean higher scores here)') : ''}. Perplexity picks #{chosen.id} (score{' '}
        <span className="num">{formatScore(chosen.taskObjective)}</span>); the best score is #{top.id} (<span className="num">{formatScore(top.taskObjective)}</span>)
        {chosen === top ? ': the same merge.' : `: ${((top.taskObjective! - chosen.taskObjective!) * 100).toFixed(1)} points higher.`}
      </p>
      <div className="chart">
        <ResponsiveContainer width="100%" height={220}>
          <ScatterChart margin={{ top: 8, right: 8, bottom: 16, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis type="number" dataKey="ppl" name="mean perplexity" domain={['auto', 'auto']} tickFormatter={(x: number) => x.toFixed(2)} label={{ value: 'mean perplexity', position: 'insideBottom', offset: -8 }} />
            <YAxis type="number" dataKey="score" name="mean task score" width={56} domain={['auto', 'auto']} tickFormatter={(x: number) => x.toFixed(2)} />
            <ZAxis type="number" dataKey="id" name="#" range={[40, 40]} />
            <Tooltip formatter={(x) => (typeof x === 'number' ? x.toFixed(4) : String(x))} />
            <Legend verticalAlign="top" />
            <Scatter name="searched merges" data={others} fill="#94a3b8" isAnimationActive={false} />
            <Scatter name="picked by perplexity" data={[point(chosen)]} fill="#2456c7" shape="diamond" isAnimationActive={false} />
            {chosen !== top && <Scatter name="best task score" data={[point(top)]} fill="#15803d" shape="star" isAnimationActive={false} />}
          </ScatterChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}
