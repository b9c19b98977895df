import { selectAdapter, selectConnectGpu, selectGpuError, selectGpuStatus } from '../store/index.ts';
import { formatBytes } from '../engine/index.ts';
import { useStudio } from './store.tsx';

const labels = {
  idle: 'WebGPU: not started',
  connecting: 'WebGPU: connecting…',
  unavailable: 'WebGPU unavailable',
  lost: 'GPU device lost',
  crashed: 'Engine stopped',
} as const;

/** The header's GPU pill: adapter vendor/architecture, or why there is none. */
export function GpuStatus() {
  const status = useStudio(selectGpuStatus);
  const adapter = useStudio(selectAdapter);
  const error = useStudio(selectGpuError);
  const connect = useStudio(selectConnectGpu);

  if (status === 'ready' && adapter) {
    const name = [adapter.vendor, adapter.architecture].filter(Boolean).join(' · ') || 'unknown adapter';
    return (
      <details className="gpu gpu--ready" data-testid="gpu-status" data-status={status}>
        <summary>
          <span className="gpu__dot" aria-hidden="true" />
          <span>
            WebGPU: <span data-testid="gpu-adapter">{name}</span>
          </span>
        </summary>
        <div className="gpu__details" data-testid="gpu-details">
          {adapter.description && <p>{adapter.description}</p>}
          <dl>
            <dt>Max buffer</dt>
            <dd>{formatBytes(adapter.maxBufferSize)}</dd>
            <dt>Max storage binding</dt>
            <dd>{formatBytes(adapter.maxStorageBufferBindingSize)}</dd>
            <dt>Features</dt>
            <dd>{adapter.features.length ? adapter.features.join(', ') : 'none'}</dd>
          </dl>
        </div>
      </details>
    );
  }

  const failed = status === 'unavailable' || status === 'lost' || status === 'crashed';
  return (
    <div className={`gpu gpu--${status}`} data-testid="gpu-status" data-status={status}>
      <span className="gpu__dot" aria-hidden="true" />
      <span>{labels[status === 'ready' ? 'connecting' : status]}</span>
      {failed && (
        <button type="button" className="button button--small" onClick={() => void connect()} data-testid="gpu-retry">
          {status === 'unavailable' ? 'Retry' : 'Reconnect'}
        </button>
      )}
      {failed && error && <span className="visually-hidden">{error.message}</span>}
    </div>
  );
}

/** The full explanation under the header when there is no GPU; loading checkpoints still works. */
export function GpuBanner() {
  const status = useStudio(selectGpuStatus);
  const error = useStudio(selectGpuError);
  if (!error || (status !== 'unavailable' && status !== 'lost' && status !== 'crashed')) return null;
  return (
    <div className="banner" role="status" data-testid="gpu-banner">
      <strong>{labels[status]}.</strong> {error.message} Inspecting checkpoints still works; merging and evaluation need a GPU.
    </div>
  );
}
