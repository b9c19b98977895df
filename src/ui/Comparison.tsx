import { useMemo } from 'react';
import { comparisonCsv, comparisonMarkdown, type ComparisonRow } from '../engine/index.ts';
import {
  comparisonOf,
  selectCheckpoints,
  selectComparisonError,
  selectComparisonStatus,
  selectMeasureComparison,
  selectPerplexities,
  selectReferences,
  selectSearchCoefIds,
  selectSearchRows,
  selectSetTrainedTokens,
  selectTaskFiles,
  selectTaskReferences,
  selectTaskScores,
  selectTrainedTokens,
  selectValidationSets,
} from '../store/index.ts';
import { download } from './download.ts';
import { formatPpl, formatScore } from './format.ts';
import { useStudio } from './store.tsx';

const pct = (v: number | undefined): string => (v === undefined ? '—' : `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}%`);
const tokens = (v: number | undefined): string => (v === undefined ? '—' : v.toLocaleString('en-US'));

/**
 * The DEM paper's comparison for this workspace: data mixing vs the DEM merge chosen by
 * validation perplexity vs the best single fine-tune (and the base), per distribution —
 * perplexity and task score — DEM's relative improvement over mixing, and the cost of each in
 * tokens trained (the fine-tunes together, one mixing run, a grid over mixing ratios as large as
 * the search). Exported as CSV or Markdown.
 */
export function ComparisonPanel() {
  const checkpoints = useStudio(selectCheckpoints);
  const validationSets = useStudio(selectValidationSets);
  const taskFiles = useStudio(selectTaskFiles);
  const references = useStudio(selectReferences);
  const taskReferences = useStudio(selectTaskReferences);
  const searchRows = useStudio(selectSearchRows);
  const searchCoefIds = useStudio(selectSearchCoefIds);
  const trainedTokens = useStudio(selectTrainedTokens);
  const perplexities = useStudio(selectPerplexities);
  const taskScores = useStudio(selectTaskScores);
  const status = useStudio(selectComparisonStatus);
  const error = useStudio(selectComparisonError);
  const measure = useStudio(selectMeasureComparison);
  const setTokens = useStudio(selectSetTrainedTokens);
  const table = useMemo(
    () => comparisonOf({ checkpoints, validationSets, taskFiles, references, taskReferences, searchRows, searchCoefIds, trainedTokens, perplexities, taskScores }),
    [checkpoints, validationSets, taskFiles, references, taskReferences, searchRows, searchCoefIds, trainedTokens, perplexities, taskScores],
  );
  const trained = checkpoints.filter((c) => c.status === 'ready' && (c.role === 'mixing' || (c.role === 'finetune' && !c.incompatible)));
  const hasMixing = checkpoints.some((c) => c.role === 'mixing' && c.status === 'ready');
  const scored = table?.distributions.filter((d) => d.metric) ?? [];
  return (
    <section className="panel panel--wide" aria-labelledby="comparison-title" data-testid="comparison-panel" data-status={status}>
      <h2 id="comparison-title" className="section-title">
        DEM vs data mixing
      </h2>
      {!table ? (
        <p className="muted">Add a base checkpoint and validation texts to compare.</p>
      ) : (
        <>
          {!hasMixing && <p className="muted small">Set a checkpoint's role to “Data-mixing baseline” (trained on all distributions at once) to compare DEM with it.</p>}
          <div className="row">
            <button type="button" className="button button--small button--primary" disabled={status === 'running'} onClick={() => void measure()} data-testid="comparison-measure">
              {status === 'running' ? 'Measuring…' : 'Measure missing task scores'}
            </button>
            <button type="button" className="button button--small" onClick={() => download('dem-vs-mixing.csv', comparisonCsv(table), 'text/csv')} data-testid="comparison-csv">
              Download CSV
            </button>
            <button type="button" className="button button--small" onClick={() => download('dem-vs-mixing.md', comparisonMarkdown(table), 'text/markdown')} data-testid="comparison-markdown">
              Download Markdown
            </button>
            <button type="button" className="button button--small button--quiet" onClick={() => void navigator.clipboard?.writeText(comparisonMarkdown(table))}>
              Copy Markdown
            </button>
          </div>
          {error && (
            <p className="card__error small" role="alert" data-testid="comparison-error">
              {error.message}
            </p>
          )}
          {/* Focusable, so a table wider than its panel scrolls from the keyboard too. */}
          <div className="results__table" tabIndex={0} role="region" aria-label="DEM vs data mixing: the table (scrolls)">
            <table className="table" data-testid="comparison-table">
              <thead>
                <tr>
                  <th scope="col">model</th>
                  {table.distributions.map((d) => (
                    <th key={d.id} scope="col" className="num">
                      {d.name} ppl
                    </th>
                  ))}
                  {scored.map((d) => (
                    <th key={d.id} scope="col" className="num">
                      {d.name} {d.metric === 'acc' ? 'acc' : 'exact match'}
                    </th>
                  ))}
                  <th scope="col" className="num">mean ppl</th>
                  {scored.length > 0 && <th scope="col" className="num">mean score</th>}
                  <th scope="col" className="num">tokens trained</th>
                </tr>
              </thead>
              <tbody>
                {table.rows.map((r: ComparisonRow) => (
                  <tr key={r.kind} data-testid="comparison-row" data-kind={r.kind} data-mean-ppl={r.meanPpl ?? ''} data-mean-score={r.meanScore ?? ''}>
                    <th scope="row">
                      {r.label} <span className="muted small">{r.name}</span>
                    </th>
                    {table.distributions.map((d) => (
                      <td key={d.id} className="num">
                        {formatPpl(r.ppl[d.id])}
                      </td>
                    ))}
                    {scored.map((d) => (
                      <td key={d.id} className="num" data-score-set={d.name} data-value={r.score[d.id] ?? ''}>
                        {formatScore(r.score[d.id])}
                      </td>
                    ))}
                    <td className="num">{formatPpl(r.meanPpl)}</td>
                    {scored.length > 0 && <td className="num">{formatScore(r.meanScore)}</td>}
                    <td className="num">{tokens(r.tokens)}</td>
                  </tr>
                ))}
                {table.costs.mixingGrid !== undefined && (
                  <tr data-testid="comparison-grid-cost">
                    <th scope="row">
                      grid over mixing ratios <span className="muted small">{table.costs.gridPoints} runs, not trained</span>
                    </th>
                    <td colSpan={table.distributions.length + scored.length + 1 + (scored.length > 0 ? 1 : 0)} />
                    <td className="num">{tokens(table.costs.mixingGrid)}</td>
                  </tr>
                )}
                {table.improvement && (
                  <tr className="table__total" data-testid="comparison-improvement" data-mean-ppl={table.improvement.meanPpl ?? ''} data-mean-score={table.improvement.meanScore ?? ''}>
                    <th scope="row">DEM vs data mixing (relative, &gt; 0: DEM better)</th>
                    {table.distributions.map((d) => (
                      <td key={d.id} className="num">
                        {pct(table.improvement!.ppl[d.id])}
                      </td>
                    ))}
                    {scored.map((d) => (
                      <td key={d.id} className="num">
                        {pct(table.improvement!.score[d.id])}
                      </td>
                    ))}
                    <td className="num">{pct(table.improvement.meanPpl)}</td>
                    {scored.length > 0 && <td className="num">{pct(table.improvement.meanScore)}</td>}
                    <td />
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          <p className="small" data-testid="comparison-costs">
            {table.costs.fineTunes !== undefined && table.costs.mixing !== undefined ? (
              <>
                Tokens trained: the fine-tunes together {tokens(table.costs.fineTunes)}; one data-mixing run {tokens(table.costs.mixing)}; a grid over mixing ratios with DEM's{' '}
                {table.costs.gridPoints} candidates {tokens(table.costs.mixingGrid)}
                {table.costs.gridOverDem !== undefined ? ` (${table.costs.gridOverDem.toFixed(1)}x DEM's training)` : ''}. DEM's search costs forward passes only
                {table.costs.demSearchForward !== undefined ? ` (${tokens(table.costs.demSearchForward)} validation tokens)` : ''}.
              </>
            ) : (
              'Enter the tokens each run trained on to compare the costs.'
            )}
            {table.winner.ppl && ` On mean perplexity: ${table.winner.ppl}.`}
            {table.winner.score && ` On mean task score: ${table.winner.score}.`}
          </p>
          {trained.length > 0 && (
            <details className="small">
              <summary>Tokens trained per checkpoint</summary>
              <div className="row">
                {trained.map((c) => (
                  <label key={c.id} className="small">
                    {c.name}{' '}
                    <input
                      type="number"
                      className="input input--num num"
                      min={0}
                      step={1000}
                      value={trainedTokens[c.id] ?? ''}
                      onChange={(e) => setTokens(c.id, e.currentTarget.value === '' ? null : e.currentTarget.valueAsNumber)}
                      aria-label={`Tokens ${c.name} was trained on`}
                    />
                  </label>
                ))}
              </div>
            </details>
          )}
        </>
      )}
    </section>
  );
}
