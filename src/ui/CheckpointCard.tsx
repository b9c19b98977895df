import { useId, useState } from 'react';
import { formatBytes, type CheckpointSummary, type TensorSummary } from '../engine/index.ts';
import {
  selectCompat,
  selectCancelCheckpoint,
  selectRemoveCheckpoint,
  selectSetRole,
  type CheckpointEntry,
  type CheckpointRole,
} from '../store/index.ts';
import { formatCount, formatDtypes, formatShape } from './format.ts';
import { useStudio } from './store.tsx';

/** One loaded (or loading, or failed) checkpoint. */
export function CheckpointCard({ entry }: { entry: CheckpointEntry }) {
  const titleId = useId();
  return (
    <article
      className={`card card--${entry.status}`}
      aria-labelledby={titleId}
      aria-busy={entry.status === 'inspecting'}
      data-testid="checkpoint-card"
      data-status={entry.status}
      data-name={entry.name}
    >
      <header className="card__header">
        <h3 id={titleId} className="card__title" data-testid="checkpoint-name">
          {entry.name}
        </h3>
        <CardActions entry={entry} />
      </header>
      {entry.status === 'inspecting' && <Inspecting entry={entry} />}
      {entry.status === 'failed' && entry.error && (
        <p className="card__error" data-testid="checkpoint-error">
          {entry.error.message}
        </p>
      )}
      {entry.status === 'ready' && entry.role === 'finetune' && <Compatibility id={entry.id} />}
      {entry.status === 'ready' && entry.summary && <Summary summary={entry.summary} />}
    </article>
  );
}

/** Every mismatch with the base (checkCompatibility); errors block the merge, warnings do not. */
function Compatibility({ id }: { id: string }) {
  const compat = useStudio(selectCompat);
  const items = compat[id];
  if (!items) return null;
  const errors = items.filter((i) => i.severity === 'error').length;
  return (
    <div className={`compat compat--${errors ? 'bad' : items.length ? 'warn' : 'ok'}`} data-testid="compat" data-errors={errors} data-items={items.length}>
      {items.length === 0 ? (
        <span>✓ Compatible with the base</span>
      ) : (
        <>
          <span>
            {errors ? `✗ ${errors} mismatch${errors === 1 ? '' : 'es'} with the base: cannot be merged` : `${items.length} warning${items.length === 1 ? '' : 's'} (can be merged)`}
          </span>
          <ul className="compat__list" data-testid="compat-list">
            {items.map((i, k) => (
              <li key={k} data-severity={i.severity}>
                {i.tensor && <code>{i.tensor}</code>} {i.message}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

function CardActions({ entry }: { entry: CheckpointEntry }) {
  const setRole = useStudio(selectSetRole);
  const cancel = useStudio(selectCancelCheckpoint);
  const remove = useStudio(selectRemoveCheckpoint);
  const roleId = useId();
  return (
    <div className="card__actions">
      {entry.status === 'ready' && (
        <>
          <label htmlFor={roleId} className="visually-hidden">
            Role of {entry.name}
          </label>
          <select
            id={roleId}
            className="select"
            value={entry.role}
            data-testid="checkpoint-role"
            onChange={(e) => setRole(entry.id, e.currentTarget.value as CheckpointRole)}
          >
            <option value="base">Base</option>
            <option value="finetune">Fine-tune</option>
            <option value="mixing">Data-mixing baseline</option>
          </select>
        </>
      )}
      {entry.status === 'inspecting' ? (
        <button type="button" className="button button--small" onClick={() => cancel(entry.id)} data-testid="checkpoint-cancel">
          Cancel
        </button>
      ) : (
        <button
          type="button"
          className="button button--small button--quiet"
          onClick={() => remove(entry.id)}
          aria-label={`Remove ${entry.name}`}
          data-testid="checkpoint-remove"
        >
          Remove
        </button>
      )}
    </div>
  );
}

function Inspecting({ entry }: { entry: CheckpointEntry }) {
  const p = entry.progress;
  return (
    <div className="card__progress" role="status">
      <span>Inspecting{p ? ` ${p.stage}${p.file ? ` (${p.file})` : ''}` : ''}…</span>
      <progress max={p?.total || undefined} value={p ? p.done : undefined} aria-label={`Inspecting ${entry.name}`} />
    </div>
  );
}

function Summary({ summary }: { summary: CheckpointSummary }) {
  const { spec } = summary;
  const fileCount = summary.files.filter((f) => f.endsWith('.safetensors')).length;
  return (
    <>
      <dl className="facts">
        <div>
          <dt>Architecture</dt>
          <dd data-testid="checkpoint-arch">
            {summary.modelType}
            {summary.family !== summary.modelType && <span className="muted"> ({summary.family} family)</span>}
          </dd>
        </div>
        <div>
          <dt>Parameters</dt>
          <dd data-testid="checkpoint-params" data-count={summary.parameterCount} title={`${summary.parameterCount.toLocaleString('en-US')} parameters`}>
            {formatCount(summary.parameterCount)}
          </dd>
        </div>
        <div>
          <dt>Dtypes</dt>
          <dd data-testid="checkpoint-dtypes" title={Object.entries(summary.dtypes).map(([d, n]) => `${d}: ${n.toLocaleString('en-US')} elements`).join('\n')}>
            {formatDtypes(summary.dtypes) || '—'}
          </dd>
        </div>
        <div>
          <dt>Size</dt>
          <dd data-testid="checkpoint-size" data-bytes={summary.totalBytes} title={`${summary.totalBytes.toLocaleString('en-US')} bytes of tensor data`}>
            {formatBytes(summary.totalBytes)}
          </dd>
        </div>
        <div>
          <dt>Storage</dt>
          <dd data-testid="checkpoint-sharded" data-sharded={summary.sharded}>
            {summary.sharded ? `sharded, ${fileCount} files` : 'single file'}
          </dd>
        </div>
        <div>
          <dt>Tokenizer</dt>
          <dd data-testid="checkpoint-tokenizer">{summary.hasTokenizer ? 'tokenizer.json' : 'none'}</dd>
        </div>
      </dl>
      <p className="card__spec" data-testid="checkpoint-spec">
        {spec.numLayers} layers · hidden {spec.hiddenSize} · {spec.numHeads} heads
        {spec.numKvHeads !== spec.numHeads ? ` (${spec.numKvHeads} KV)` : ''} · vocab {spec.vocabSize} · context {spec.maxPositions}
      </p>
      {summary.features && (
        <p className="card__spec" data-testid="checkpoint-features">
          {summary.features.join(' · ')}
        </p>
      )}
      <TensorTable tensors={summary.tensors} />
    </>
  );
}

function TensorTable({ tensors }: { tensors: readonly TensorSummary[] }) {
  const [open, setOpen] = useState(false);
  const tableId = useId();
  const buffers = tensors.filter((t) => t.kind !== 'param').length;
  return (
    <div className="tensors">
      <button
        type="button"
        className="button button--small button--quiet tensors__toggle"
        aria-expanded={open}
        aria-controls={tableId}
        onClick={() => setOpen((o) => !o)}
        data-testid="tensor-toggle"
      >
        <span aria-hidden="true" className="tensors__chevron">
          {open ? '▾' : '▸'}
        </span>
        {open ? 'Hide' : 'Show'} {tensors.length} tensors{buffers ? ` (${buffers} not counted)` : ''}
      </button>
      <div id={tableId} className="tensors__scroll" hidden={!open}>
        {open && (
          <table className="tensors__table" data-testid="tensor-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Dtype</th>
                <th scope="col">Shape</th>
                <th scope="col">Kind</th>
              </tr>
            </thead>
            <tbody>
              {tensors.map((t) => (
                <tr key={t.name} data-testid="tensor-row" title={`${t.file} · ${formatBytes(t.bytes)}`}>
                  <td className="mono">{t.name}</td>
                  <td>{t.dtype}</td>
                  <td className="mono">{formatShape(t.shape)}</td>
                  <td>{t.kind}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </div>
  );
}
