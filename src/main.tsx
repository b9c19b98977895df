import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createStudioStore } from './store/index.ts';
import { App } from './ui/App.tsx';
import { StudioProvider } from './ui/store.tsx';
import { createEngineClient } from './worker/client.ts';
import './ui/styles.css';

// The engine (and the GPU device) live in a Worker; the page holds only the store and React.
const engine = createEngineClient();
const store = createStudioStore({ engine });

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <StudioProvider store={store}>
      <App />
    </StudioProvider>
  </StrictMode>,
);
