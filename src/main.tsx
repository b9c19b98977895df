import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createStudioStore, indexedDbStorage } from './store/index.ts';
import { App } from './ui/App.tsx';
import { StudioProvider } from './ui/store.tsx';
import { createEngineClient } from './worker/client.ts';
import './ui/styles.css';

// The engine (and the GPU device) live in a Worker; the page holds only the store and React.
const engine = createEngineClient();
// ?gpuBudget=BYTES caps the engine's GPU memory (tests use it to provoke out-of-memory);
// ?fresh starts without the persisted workspace.
const query = new URLSearchParams(location.search);
const budget = Number(query.get('gpuBudget'));
const store = createStudioStore({
  engine,
  storage: query.has('fresh') || typeof indexedDB === 'undefined' ? undefined : indexedDbStorage(),
  memoryBudget: Number.isFinite(budget) && budget > 0 ? budget : undefined,
});

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <StudioProvider store={store}>
      <App />
    </StudioProvider>
  </StrictMode>,
);
