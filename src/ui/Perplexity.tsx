import { Bar, CartesianGrid, Legend, ResponsiveContainer, Scatter, ComposedChart, Tooltip, XAxis, YAxis } from 'recharts';
import {
  selectCheckpoints,
  selectEvalError,
  selectEvalHint,
  selectEvalStatus,
  selectPerplexities,
  selectReferences,
  selectTaskError,
  selectTaskFiles,
  selectTaskScores,
  selectTaskStatus,
  selectTimings,
  selectValidationSets,
  type TaskResult,
} from '../store/index.ts';
import { formatMs, formatPpl, formatScore } from './format.ts';
import { useStudio } from './store.tsx';

export const SERIES_COLORS = ['#2456c7', '#c2410c', '#15803d', '#7c3aed', '#b91c1c', '#0e7490', '#a16207', '#be185d'];

/**
 * Perplexity of the current merge per validation set, with the base's, each fine-tune's and the
 * data-mixing baseline's own perplexity as reference marks, and their averages; beside it the
 * merge's score on each set's task file (measured right after the perplexity). Numbers sit in
 * fixed-width cells so the layout stays put while they update.
 */
export function PerplexityPanel() {
  const sets = useStudio(selectValidationSets).filter((v) => v.status === 'ready');
  const ppl = useStudio(selectPerplexities);
  const refs = useStudio(selectReferences);
  const status = useStudio(selectEvalStatus);
  const error = useStudio(selectEvalError);
  const hint = useStudio(selectEvalHint);
  const timings = useStudio(selectTimings);
  const taskFiles = useStudio(selectTaskFiles);
  const taskScores = useStudio(selectTaskScores);
  const taskStatus = useStudio(selectTaskStatus);
  const taskError = useStudio(selectTaskError);
  const checkpoints = useStudio(selectCheckpoints).filter((c) => c.status === 'ready');
  const base = checkpoints.find((c) => c.role === 'base');
  // Incompatible fine-tunes are out of the merge and have no references.
  const others = [...(base ? [base] : []), ...checkpoints.filter((c) => (c.role === 'finetune' && !c.incompatible) || c.role === 'mixing')];
  const suffix = (role: string): string => (role === 'base' ? ' (base)' : role === 'mixing' ? ' (mixing)' : '');
  const scoreOf = (setId: string) => {
    const t = taskFiles.find((x) => x.setId === setId && x.status === 'ready');
    return t ? taskScores[t.id] : undefined;
  };
  const hasTasks = sets.some((v) => taskFiles.some((t) => t.setId === v.id && t.status === 'ready'));
  const scored = sets.map((v) => scoreOf(v.id)?.score);
  const avg = (xs: (number | undefined)[]): number | undefined => (xs.every((x) => x !== undefined) && xs.length ? xs.reduce((s, x) => s + x!, 0) / xs.length : undefined);
  const rows = sets.map((v) => ({
    name: v.name,
    merged: ppl[v.id],
    score: scoreOf(v.id)?.score,
    ...Object.fromEntries(others.map((c) => [c.id, refs[`${c.id}|${v.id}`]])),
  }));
  const average = {
    name: 'average',
    merged: avg(sets.map((v) => ppl[v.id])),
    score: scored.some((x) => x !== undefined) ? avg(scored.filter((x) => x !== undefined)) : undefined,
    ...Object.fromEntries(others.map((c) => [c.id, avg(sets.map((v) => refs[`${c.id}|${v.id}`]))])),
  };
  const data = sets.length > 1 ? [...rows, average] : rows;
  return (
    <section className="panel panel--wide" aria-labelledby="ppl-title" data-testid="perplexity-panel" data-status={status}>
      <h2 id="ppl-title" className="section-title">
        Validation perplexity{' '}
        <span className="status-chip" data-testid="eval-status" data-status={status} aria-live="polite">
          {status === 'running' ? 'measuring…' : status === 'done' ? 'up to date' : status === 'failed' ? 'failed' : 'idle'}
        </span>
        <span className="timing num" data-testid="eval-timing" title={timings ? `merge ${formatMs(timings.mergeMs)} · perplexity ${formatMs(timings.evalMs)} · set-up ${formatMs(timings.setupMs)} · ${timings.mode}` : undefined}>
          {timings ? `${formatMs(timings.roundTripMs)} (merge ${formatMs(timings.mergeMs)}, ppl ${formatMs(timings.evalMs)}, ${timings.mode})` : ''}
        </span>
        {hasTasks && (
          <span className="status-chip" data-testid="task-status" data-status={taskStatus} aria-live="polite">
            tasks: {taskStatus === 'running' ? 'scoring…' : taskStatus === 'done' ? 'up to date' : taskStatus === 'failed' ? 'failed' : 'waiting'}
          </span>
        )}
      </h2>
      {hint && <p className="muted" data-testid="eval-hint">{hint}</p>}
      {error && (
        <p className="card__error" role="alert" data-testid="eval-error">
          {error.message}
        </p>
      )}
      {taskError && (
        <p className="card__error" role="alert" data-testid="task-error">
          {taskError.message}
        </p>
      )}
      {sets.length > 0 && (
        <div className="ppl">
          <div className="chart" data-testid="ppl-chart">
            <ResponsiveContainer width="100%" height={200}>
              <ComposedChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
                <CartesianGrid strokeDasharray="3 3" vertical={false} />
                <XAxis dataKey="name" />
                <YAxis width={56} domain={['auto', 'auto']} tickFormatter={(x: number) => x.toFixed(1)} />
                <Tooltip formatter={(x) => (typeof x === 'number' ? x.toFixed(4) : String(x))} />
                <Legend layout="vertical" align="right" verticalAlign="middle" />
                <Bar dataKey="merged" name="merge" fill={SERIES_COLORS[0]} isAnimationActive={false} />
                {others.map((c, i) => (
                  <Scatter
                    key={c.id}
                    dataKey={c.id}
                    name={`${c.name}${suffix(c.role)}`}
                    fill={SERIES_COLORS[(i + 1) % SERIES_COLORS.length]}
                    shape={c.role === 'base' ? 'diamond' : 'circle'}
                    isAnimationActive={false}
                  />
                ))}
              </ComposedChart>
            </ResponsiveContainer>
          </div>
          <table className="table" data-testid="ppl-table">
            <thead>
              <tr>
                <th scope="col">Set</th>
                <th scope="col" className="num">merge</th>
                {hasTasks && (
                  <th scope="col" className="num" title="acc (multiple choice) or exact match (generative) ± standard error">
                    merge task score
                  </th>
                )}
                {others.map((c) => (
                  <th key={c.id} scope="col" className="num">
                    {c.name}
                    {suffix(c.role)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {data.map((r, i) => (
                <tr key={r.name} data-testid="ppl-row" data-name={r.name} className={i === rows.length ? 'table__total' : undefined}>
                  <th scope="row">{r.name}</th>
                  <td className="num" data-testid="ppl-merged" data-value={r.merged ?? ''}>
                    {formatPpl(r.merged)}
                  </td>
                  {hasTasks && <ScoreCell result={i < rows.length ? scoreOf(sets[i]!.id) : undefined} mean={i === rows.length ? r.score : undefined} />}
                  {others.map((c) => (
                    <td key={c.id} className="num">
                      {formatPpl((r as unknown as Record<string, number | undefined>)[c.id])}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}


/** The merge's score on a set's task file (or the average row's mean), exact values in data attributes. */
function ScoreCell({ result, mean }: { result?: TaskResult; mean?: number }) {
  if (!result) return <td className="num" data-testid="task-score" data-value={mean ?? ''}>{formatScore(mean)}</td>;
  return (
    <td
      className="num"
      data-testid="task-score"
      data-kind={result.kind}
      data-value={result.score}
      data-acc-norm={result.accNorm ?? ''}
      data-n={result.n}
      title={`${result.kind === 'choice' ? `acc (acc_norm ${formatScore(result.accNorm)})` : 'exact match'}, ${result.n} items`}
    >
      {formatScore(result.score, result.stderr)}
    </td>
  );
}
