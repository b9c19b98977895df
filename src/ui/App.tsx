import { useEffect } from 'react';
import { selectCheckpoints, selectConnectGpu } from '../store/index.ts';
import { AddCheckpoint, DropZone } from './AddCheckpoint.tsx';
import { CheckpointCard } from './CheckpointCard.tsx';
import { GpuBanner, GpuStatus } from './GpuStatus.tsx';
import { CoefficientsPanel } from './Coefficients.tsx';
import { ComparisonPanel } from './Comparison.tsx';
import { ExplorePanel } from './Explore.tsx';
import { ExportPanel, GeneratePanel, LayersPanel } from './Insight.tsx';
import { Notifications } from './Notifications.tsx';
import { PerplexityPanel } from './Perplexity.tsx';
import { useRecipeUrl, useUndoKeys } from './RecipeTools.tsx';
import { SearchPanel } from './Search.tsx';
import { StoragePanel } from './StoragePanel.tsx';
import { useStudio } from './store.tsx';
import { TrainPanel } from './TrainPanel.tsx';
import { UpdatePrompt } from './UpdatePrompt.tsx';
import { ValidationPanel } from './Validation.tsx';

export function App() {
  const connect = useStudio(selectConnectGpu);
  useEffect(() => {
    void connect();
  }, [connect]);
  useUndoKeys();
  useRecipeUrl();

  return (
    <div className="app">
      <header className="topbar">
        <h1 className="topbar__title">
          DEM Studio <span className="topbar__sub">merge fine-tuned language models in the browser</span>
        </h1>
        <div className="topbar__actions">
          <a className="button button--small learn-entry" href="#/learn" data-testid="learn-entry">
            Learn: a guided tour
          </a>
          <GpuStatus />
        </div>
      </header>
      <GpuBanner />
      <main className="main workspace">
        <div className="workspace__inputs">
          <AddCheckpoint />
          <Checkpoints />
          <ValidationPanel />
          <StoragePanel />
          <TrainPanel />
        </div>
        <div className="workspace__merge">
          <CoefficientsPanel />
          <PerplexityPanel />
          <SearchPanel />
          <ComparisonPanel />
          <ExplorePanel />
          <div className="workspace__pair">
            <LayersPanel />
            <GeneratePanel />
          </div>
          <ExportPanel />
        </div>
      </main>
      <Notifications />
      <UpdatePrompt />
      <DropZone />
    </div>
  );
}

function Checkpoints() {
  const checkpoints = useStudio(selectCheckpoints);
  return (
    <section className="checkpoints" aria-labelledby="checkpoints-title">
      <h2 id="checkpoints-title" className="section-title">
        Checkpoints <span className="muted">({checkpoints.filter((c) => c.status === 'ready').length} loaded)</span>
      </h2>
      {checkpoints.length === 0 ? (
        <p className="empty" data-testid="empty-state">
          No checkpoints yet. Add a base model and its fine-tunes to compare and merge them.
        </p>
      ) : (
        <div className="cards" data-testid="checkpoint-list">
          {checkpoints.map((c) => (
            <CheckpointCard key={c.id} entry={c} />
          ))}
        </div>
      )}
    </section>
  );
}
