import { useState } from 'react';
import { formatBytes } from '../engine/index.ts';
import {
  selectClearStorage,
  selectGrantAccess,
  selectRemoveStored,
  selectStorageCopying,
  selectStorageEnabled,
  selectStorageError,
  selectStorageInPlace,
  selectStorageMissing,
  selectStorageNotStored,
  selectStorageSaving,
  selectStorageUsage,
  selectStoredItems,
} from '../store/index.ts';
import { useStudio } from './store.tsx';

/**
 * What the studio keeps on this machine (OPFS): bytes used against the browser's quota, each
 * stored checkpoint and text with its size, copies in progress, what did not fit, and what a
 * restore could not find. Without OPFS (or with ?fresh) the panel says nothing is kept.
 */
export function StoragePanel() {
  const enabled = useStudio(selectStorageEnabled);
  if (!enabled) {
    return (
      <section className="panel" aria-labelledby="storage-title" data-testid="storage-panel" data-available="false">
        <h2 id="storage-title" className="section-title">
          Storage
        </h2>
        <p className="muted">Nothing is kept on this machine in this session: the workspace lasts until the page closes.</p>
      </section>
    );
  }
  return <StorageContents />;
}

function StorageContents() {
  const usage = useStudio(selectStorageUsage);
  const items = useStudio(selectStoredItems);
  const copying = useStudio(selectStorageCopying);
  const notStored = useStudio(selectStorageNotStored);
  const missing = useStudio(selectStorageMissing);
  const inPlace = useStudio(selectStorageInPlace);
  const grantAccess = useStudio(selectGrantAccess);
  const saving = useStudio(selectStorageSaving);
  const error = useStudio(selectStorageError);
  const remove = useStudio(selectRemoveStored);
  const clearAll = useStudio(selectClearStorage);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const copies = Object.entries(copying);

  return (
    <section className="panel" aria-labelledby="storage-title" data-testid="storage-panel" data-available="true" data-saving={saving ? 'true' : 'false'} data-copying={copies.length}>
      <h2 id="storage-title" className="section-title">
        Storage <span className="muted">(on this machine only)</span>
      </h2>
      {usage && (
        <p className="num" data-testid="storage-usage" data-stored={usage.stored} data-quota={usage.quota} data-usage={usage.usage}>
          Studio files {formatBytes(usage.stored)} · browser storage {formatBytes(usage.usage)} of {formatBytes(usage.quota)}
        </p>
      )}
      {copies.map(([id, c]) => (
        <p key={id} data-testid="storage-copying" data-id={id}>
          Keeping “{c.name}”… <progress max={c.total || 1} value={c.written} /> {formatBytes(c.written)} / {formatBytes(c.total)}
        </p>
      ))}
      {Object.entries(notStored).map(([id, message]) => (
        <p key={id} role="alert" className="set__error" data-testid="storage-not-stored" data-id={id}>
          Not kept (used from memory until the page closes): {message}
        </p>
      ))}
      {missing.length > 0 && (
        <div data-testid="storage-missing">
          <p>Not found in storage, choose again:</p>
          <ul>
            {missing.map((m) => (
              <li key={m.id} data-testid="storage-missing-item" data-name={m.name}>
                {m.kind} “{m.name}”: {m.permission ? 'opened in place; the browser needs your permission to read it again ' : m.files.join(', ')}
                {m.permission && (
                  <button type="button" className="button button--small" onClick={() => void grantAccess(m.id)} data-testid="grant-access">
                    Allow access
                  </button>
                )}
              </li>
            ))}
          </ul>
        </div>
      )}
      {Object.keys(inPlace).length > 0 && (
        <ul className="sets" data-testid="storage-in-place">
          {Object.entries(inPlace).map(([id, name]) => (
            <li key={id} className="set" data-testid="storage-in-place-item" data-name={name}>
              <span className="set__name">Checkpoint “{name}”</span>
              <span className="muted">opened in place (read from its folder, not copied)</span>
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p role="alert" className="set__error">
          {error}
        </p>
      )}
      {items.length === 0 ? (
        <p className="muted" data-testid="storage-empty">
          Nothing stored yet.
        </p>
      ) : (
        <ul className="sets" data-testid="storage-list">
          {items.map((i) => (
            <li key={`${i.kind}:${i.id}`} className="set" data-testid="storage-item" data-kind={i.kind} data-name={i.name ?? ''} data-size={i.size}>
              <span className="set__name">
                {i.kind === 'checkpoint' ? 'Checkpoint' : 'Text'} {i.name ? `“${i.name}”` : <span className="muted">(not in the workspace)</span>}
              </span>
              <span className="num">
                {formatBytes(i.size)}
                {i.files > 1 ? ` in ${i.files} files` : ''}
              </span>
              <button
                type="button"
                className="button button--small button--quiet"
                aria-label={`Remove stored ${i.kind} ${i.name ?? i.id}`}
                onClick={() => void remove(i)}
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      {confirming ? (
        <p role="alertdialog" aria-label="Confirm clearing storage">
          Delete every stored checkpoint and text and empty the workspace?{' '}
          <button
            type="button"
            className="button button--small"
            data-testid="storage-clear-confirm"
            disabled={busy}
            onClick={() => {
              setBusy(true);
              void clearAll().finally(() => {
                setBusy(false);
                setConfirming(false);
              });
            }}
          >
            Delete everything
          </button>{' '}
          <button type="button" className="button button--small button--quiet" onClick={() => setConfirming(false)}>
            Keep
          </button>
        </p>
      ) : (
        <button type="button" className="button button--small button--quiet" data-testid="storage-clear" onClick={() => setConfirming(true)}>
          Clear everything…
        </button>
      )}
    </section>
  );
}
