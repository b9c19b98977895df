import { selectDismiss, selectNotifications } from '../store/index.ts';
import { useStudio } from './store.tsx';

/**
 * Errors and notes, stacked over the page's corner so nothing underneath moves. Each stays
 * until dismissed; a failure never removes what is loaded.
 */
export function Notifications() {
  const notices = useStudio(selectNotifications);
  const dismiss = useStudio(selectDismiss);
  return (
    <section className="notices" aria-label="Notifications" aria-live="polite" data-testid="notifications">
      {notices.map((n) => (
        <div key={n.id} className={`notice notice--${n.level}`} role={n.level === 'error' ? 'alert' : 'status'} data-testid="notification" data-level={n.level}>
          <div className="notice__body">
            <p className="notice__title">{n.title}</p>
            <p className="notice__message" data-testid="notification-message">
              {n.message}
            </p>
            {n.file && (
              <p className="notice__file">
                File: <code data-testid="notification-file">{n.file}</code>
                {n.tensor && (
                  <>
                    {' '}
                    · tensor <code>{n.tensor}</code>
                  </>
                )}
              </p>
            )}
          </div>
          <button type="button" className="notice__dismiss" onClick={() => dismiss(n.id)} aria-label={`Dismiss: ${n.title}`} data-testid="notification-dismiss">
            ×
          </button>
        </div>
      ))}
    </section>
  );
}
