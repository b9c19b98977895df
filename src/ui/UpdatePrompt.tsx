/// <reference types="vite-plugin-pwa/react" />
import { useRegisterSW } from 'virtual:pwa-register/react';

/**
 * The service worker (registerType 'prompt') installs a new version in the background and waits;
 * this says so and reloads into it when asked, so nobody keeps an old studio without knowing.
 */
export function UpdatePrompt() {
  const {
    needRefresh: [needRefresh, setNeedRefresh],
    updateServiceWorker,
  } = useRegisterSW();
  if (!needRefresh) return null;
  return (
    <div className="update-prompt" role="status" data-testid="update-prompt">
      <span>A new version of DEM Studio is ready.</span>
      <button type="button" className="button button--small button--primary" onClick={() => void updateServiceWorker(true)} data-testid="update-reload">
        Reload
      </button>
      <button type="button" className="button button--small button--quiet" onClick={() => setNeedRefresh(false)}>
        Later
      </button>
    </div>
  );
}
