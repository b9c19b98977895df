import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { startWithDemo } from './store/demo.ts';
import { createStudioStore, indexedDbStorage } from './store/index.ts';
import { createTrainingStore, type TrainWorkerLike } from './store/training.ts';
import { createLocalPersistence } from './store/storage.ts';
import { LocalStore } from './storage/local.ts';
import { App } from './ui/App.tsx';
import { StorageProvider } from './ui/StoragePanel.tsx';
import { StudioProvider } from './ui/store.tsx';
import { TrainingProvider } from './ui/TrainPanel.tsx';
import { createEngineClient } from './worker/client.ts';
import './ui/styles.css';

// The engine (and the GPU device) live in a Worker; the page holds only the store and React.
const engine = createEngineClient();
// ?gpuBudget=BYTES caps the engine's GPU memory (tests use it to provoke out-of-memory);
// ?fresh starts without the persisted workspace.
const query = new URLSearchParams(location.search);
const budget = Number(query.get('gpuBudget'));
// The workspace and the files the user loads are kept in OPFS (src/store/storage.ts).
const local = query.has('fresh') || !LocalStore.available() ? null : createLocalPersistence(LocalStore.open().catch(() => null));
const store = createStudioStore({
  engine,
  storage: local ? local.persist : query.has('fresh') || typeof indexedDB === 'undefined' ? undefined : indexedDbStorage(),
  memoryBudget: Number.isFinite(budget) && budget > 0 ? budget : undefined,
});
local?.attach(store);

// Fine-tuning runs in its own Worker (onnxruntime-web training wasm), started on the first run.
const training = createTrainingStore(store, () => new Worker(new URL('./worker/train.worker.ts', import.meta.url), { type: 'module', name: 'dem-train' }) as unknown as TrainWorkerLike);

// No saved workspace (first visit) or ?demo: open the demo workspace from /demo/; ?nodemo: never.
void startWithDemo(store, query);

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <StudioProvider store={store}>
      <StorageProvider store={local?.storage ?? null}>
        <TrainingProvider store={training}>
          <App />
        </TrainingProvider>
      </StorageProvider>
    </StudioProvider>
  </StrictMode>,
);
