import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { startWithDemo } from './store/demo.ts';
import { createStudioStore, indexedDbStorage, startLearn } from './store/index.ts';
import { fileHandlesAvailable, indexedDbHandleStore } from './storage/handles.ts';
import { LocalStore } from './storage/local.ts';
import { App } from './ui/App.tsx';
import { LearnApp } from './ui/learn/LearnApp.tsx';
import { isLearnHash } from './ui/learn/url.ts';
import { StudioProvider } from './ui/store.tsx';
import { createEngineClient } from './worker/client.ts';
import { createTrainClient } from './worker/trainClient.ts';
import './ui/styles.css';

// The engine (and the GPU device) live in a Worker; the page holds only the store and React.
// Fine-tuning runs in its own Worker (onnxruntime-web training wasm), started on the first run.
// ?gpuBudget=BYTES caps the engine's GPU memory (tests use it to provoke out-of-memory);
// ?fresh starts without the persisted workspace and keeps nothing; ?inPlace=BYTES sets the size
// from which a checkpoint opened through the File System Access API is read in place (default 1 GiB).
const query = new URLSearchParams(location.search);
const budget = Number(query.get('gpuBudget'));
const inPlaceBytes = query.has('inPlace') ? Number(query.get('inPlace')) : NaN;
const memoryBudget = Number.isFinite(budget) && budget > 0 ? budget : undefined;
// Learn mode (#/learn/…) is a lesson on the demo workspace in a store of its own that keeps
// nothing: the user's workspace is neither shown nor touched. Crossing between the studio and
// the lesson reloads the page, so one engine Worker serves one store.
const learn = isLearnHash(location.hash);
window.addEventListener('hashchange', () => {
  if (isLearnHash(location.hash) !== learn) location.reload();
});
const engine = createEngineClient();
let store;
if (learn) {
  store = createStudioStore({ engine, memoryBudget });
  void startLearn(store, engine);
} else {
  const keep = !query.has('fresh');
  const demo = query.has('demo');
  const opened = keep && LocalStore.available() ? LocalStore.open().catch(() => null) : undefined;
  // ?demo never touches a saved workspace: when something is stored, the demo opens in a separate
  // session that neither restores nor stores anything (as ?fresh), and the saved workspace comes
  // back on the next visit without ?demo.
  const separate = demo && opened ? opened.then(async (l) => !!l && (await l.list().catch(() => [])).length > 0) : Promise.resolve(false);
  store = createStudioStore({
    engine,
    train: createTrainClient(),
    // The workspace and the files the user loads are kept in OPFS (src/store/storage.ts); a
    // browser without OPFS keeps the workspace in IndexedDB instead (not for a ?demo session:
    // it could not tell whether the demo would replace a saved workspace there).
    local: opened && demo ? Promise.all([opened, separate]).then(([l, apart]) => (apart ? null : l)) : opened,
    storage: keep && !demo && !LocalStore.available() && typeof indexedDB !== 'undefined' ? indexedDbStorage() : undefined,
    memoryBudget,
    // Checkpoints opened in place keep their file handles in IndexedDB (src/storage/handles.ts).
    handles: keep && fileHandlesAvailable() ? indexedDbHandleStore().catch(() => null) : undefined,
    inPlaceBytes: Number.isFinite(inPlaceBytes) && inPlaceBytes >= 0 ? inPlaceBytes : undefined,
  });
  // No saved workspace (first visit) or ?demo: open the demo workspace from /demo/; ?nodemo: never.
  void startWithDemo(store, query, undefined, { separate });
}

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <StudioProvider store={store}>{learn ? <LearnApp /> : <App />}</StudioProvider>
  </StrictMode>,
);
