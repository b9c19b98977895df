import { useId, useMemo, useState } from 'react';
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis, Legend } from 'recharts';
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
  selectSetObjectiveWeight,
  selectValidationSets,
  type SearchRow,
} from '../store/index.ts';
import { formatEta, formatPpl } from './format.ts';
import { useStudio } from './store.tsx';

/**
 * Coefficient search: the paper's grid (values per coefficient by min/max/step, optional Σ ω = 1)
 * or a budgeted Nelder–Mead, minimising the (weighted) average perplexity. Progress with ETA,
 * cancel, a sortable table whose rows can be applied, and the trace of the objective.
 */
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
  const job = useStudio(selectJob);
  const busy = job?.status === 'running';
  return (
    <section className="panel panel--wide" aria-labelledby="search-title" data-testid="search-panel">
      <h2 id="search-title" className="section-title">
        Search coefficients
      </h2>
      <div className="row">
        <span className="small">Objective: average perplexity, weighted</span>
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

type SortKey = 'id' | 'objective' | `w${number}` | `p:${string}`;

function Results() {
  const rows = useStudio(selectSearchRows);
  const kind = useStudio(selectSearchKind);
  const coefIds = useStudio(selectSearchCoefIds);
  const checkpoints = useStudio(selectCheckpoints);
  const sets = useStudio(selectValidationSets).filter((v) => v.status === 'ready');
  const apply = useStudio(selectApplyRow);
  const [sort, setSort] = useState<{ key: SortKey; asc: boolean }>({ key: 'objective', asc: true });
  const captionId = useId();
  const value = (r: SearchRow, key: SortKey): number =>
    key === 'id' ? r.id : key === 'objective' ? r.objective : key.startsWith('w') ? (r.weights[Number(key.slice(1))] ?? 0) : (r.ppls[key.slice(2)] ?? Infinity);
  const sorted = useMemo(() => [...rows].sort((a, b) => (value(a, sort.key) - value(b, sort.key)) * (sort.asc ? 1 : -1)), [rows, sort]);
  const best = rows.reduce<SearchRow | undefined>((x, y) => (!x || y.objective < x.objective ? y : x), undefined);
  const trace = rows.map((r, i) => ({ n: i + 1, objective: r.objective, best: Math.min(...rows.slice(0, i + 1).map((x) => x.objective)) }));
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
      <div className="results__table">
        <table className="table" aria-describedby={captionId} data-testid="search-table">
          <caption id={captionId} className="small muted">
            {kind === 'grid' ? 'Grid' : 'Nelder–Mead'}: {rows.length} evaluations · best objective <span className="num" data-testid="search-best">{formatPpl(best?.objective)}</span>
          </caption>
          <thead>
            <tr>
              {header('id', '#')}
              {coefIds.map((id, i) => header(`w${i}`, `ω ${name(id)}`))}
              {sets.map((v) => header(`p:${v.id}`, v.name))}
              {header('objective', 'objective')}
              <th scope="col" />
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
            <Line dataKey="objective" name="evaluation" stroke="#94a3b8" dot isAnimationActive={false} />
            <Line dataKey="best" name="best so far" stroke="#2456c7" dot={false} isAnimationActive={false} />
          </LineChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}
